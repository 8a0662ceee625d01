import pytest

from harness.quantities import parse_duration, parse_objective, render_value


@pytest.mark.parametrize("text,seconds", [("20s", 20), ("500ms", 0.5), ("3m", 180), ("1.5h", 5400), (5, 5), ("7", 7)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["10x", "", "-3s", "fast", True, "8d", "9999999h"])
def test_bad_durations_say_what_is_expected(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_objectives_normalise_units():
    o = parse_objective(">= 99.9%")
    assert (o.op, o.value, o.unit) == (">=", pytest.approx(0.999), "ratio")
    assert o.holds(0.9995) and not o.holds(0.998)
    lat = parse_objective("< 500ms")
    assert lat.unit == "seconds" and lat.holds(0.499) and not lat.holds(0.5)
    assert parse_objective("> 3m").value == 180


@pytest.mark.parametrize("bad", ["99%", "=> 1", "< fast", 3, "== "])
def test_bad_objectives(bad):
    with pytest.raises(ValueError, match="comparison"):
        parse_objective(bad)


def test_render():
    assert render_value(0.9712, "ratio") == "97.1%"
    assert render_value(0.047, "seconds") == "47ms"
    assert render_value(None, "ratio") == "no data"
