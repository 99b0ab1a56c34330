import numpy as np
from click.testing import CliRunner

from genseq.cli import main
from genseq.strokes import StrokeDataset
from genseq.strokes.inkml import convert_inkml

NS = 'xmlns="http://www.w3.org/2003/InkML"'
FILE_LEVEL = f"""<ink {NS}><annotation type="truth">hello</annotation>
<traceFormat><channel name="X" type="decimal"/><channel name="Y" type="decimal"/><channel name="T"/></traceFormat>
<trace>0 0 0, 0 10 1, 0 20 2</trace><trace>5 5 3,6 5 4</trace></ink>"""
GROUPS = f"""<ink {NS}>
<trace xml:id="t1">0 0, 1 0</trace><trace xml:id="t2">2 0, 3 0</trace><trace xml:id="t3">9 9, 9 8</trace>
<traceGroup><annotation type="truth">ab</annotation><traceView traceDataRef="t1"/><traceView traceDataRef="t2"/></traceGroup>
<traceGroup><annotation type="truth">c</annotation><traceView traceDataRef="t3"/></traceGroup></ink>"""
Y_UP = f"""<ink {NS}><annotation type="truth">up</annotation><traceFormat>
<channel name="Y" orientation="-ve"/><channel name="X"/></traceFormat><trace>10 0, 20 0</trace></ink>"""


def test_inkml(tmp_path):
    files = []
    for name, text in [("a", FILE_LEVEL), ("b", GROUPS), ("c", Y_UP), ("d", "<ink"), ("e", f"<ink {NS}><trace>0 0</trace></ink>"),
                       ("f", f"<ink {NS}><annotation type='truth'>x</annotation><trace>'1 1</trace></ink>"),
                       # encodings the parser cannot read: skipped as malformed, never a crash
                       *[(f"g{k}", f'<?xml version="1.0" encoding="{enc}"?>' + Y_UP)
                         for k, enc in enumerate(("bogus-9", "shift_jis", "base64"))]]:
        p = tmp_path / f"{name}.inkml"
        p.write_text(text)
        files.append(p)
    out = tmp_path / "o.h5"
    rep = convert_inkml(files, out)
    assert rep.kept == 4
    assert dict(rep.skipped) == {"malformed xml": 4, "no truth annotation": 1,
                                 "unsupported trace encoding (differences or hex)": 1}
    with StrokeDataset(out) as ds:
        sp = ds.split("train")
        got = {sp.ids[i]: sp[i] for i in range(len(sp))}
    assert sorted(got) == ["a", "b:0", "b:1", "c"]
    np.testing.assert_array_equal(got["a"].points[:, 1], [0, -10, -10, 15, 0])
    np.testing.assert_array_equal(got["a"].points[:, 2], [0, 0, 1, 0, 1])
    assert got["b:0"].text == "ab" and len(got["b:0"].points) == 4
    np.testing.assert_array_equal(got["c"].points[1], [0, 10, 1])  # Y column first, y already up
    r = CliRunner().invoke(main, ["data", "inkml", str(files[3]), "-o", str(tmp_path / "x.h5")])
    assert r.exit_code == 1 and "no usable lines" in r.output and "Traceback" not in r.output


def test_trace_references_as_uri_fragments_and_dangling_ones(tmp_path):
    refs = f"""<ink {NS}>
<trace xml:id="t1">0 0, 1 0</trace><trace xml:id="t2">2 0, 3 0, 4 0</trace>
<traceGroup><annotation type="truth">ab</annotation><trace>5 5, 6 5</trace><traceView traceDataRef="#t2"/></traceGroup>
<traceGroup><annotation type="truth">c</annotation><traceView traceDataRef="t1"/><traceView traceDataRef="#t9"/></traceGroup>
</ink>"""
    (tmp_path / "r.inkml").write_text(refs)
    rep = convert_inkml([tmp_path / "r.inkml"], tmp_path / "r.h5")
    assert rep.kept == 1 and dict(rep.skipped) == {"unresolved traceDataRef": 1}  # not kept with half its ink
    with StrokeDataset(tmp_path / "r.h5") as ds:
        (only,) = list(ds.split("train"))
    assert only.text == "ab" and len(only.points) == 5  # its own trace and the one "#t2" names
