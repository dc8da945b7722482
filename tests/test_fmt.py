"""Numbers and tables as text (convtrain.fmt)."""
from convtrain.fmt import fmt_bytes, fmt_flops, fmt_int, table


def test_numbers():
    assert fmt_int(1234567) == "1,234,567"
    assert [fmt_flops(n) for n in (999, 5632, 2_500_000, 3 * 10**9)] == \
        ["999", "5.63K", "2.50M", "3.00G"]
    assert [fmt_bytes(n) for n in (1023, 2048, 3 * 2**20)] == ["1023 B", "2.0 KiB", "3.0 MiB"]


def test_table_aligns_columns_and_strips_trailing_space():
    text = table(["name", "n", "note"], [["a", 10, ""], ["long", 2, "x"]], "lrl")
    assert text.splitlines() == ["name   n  note",
                                 "----  --  ----",
                                 "a     10",
                                 "long   2  x"]
