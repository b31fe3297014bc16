"""Schema validity as the harness counts it: parsed, offered tool, arguments valid."""
from needle.data.schema import parse_tools
from needle.eval.run import Item, validity

TOOLS = parse_tools([{"name": "f", "description": "", "parameters": {"type": "object", "properties": {
    "n": {"type": "integer", "minimum": 1}}, "required": ["n"]}}])


def test_validity_counts_parsed_and_schema_valid_answers():
    items = [Item(str(i), "q", TOOLS) for i in range(5)]
    preds = [([{"name": "f", "arguments": {"n": 2}}], True),
             ([], True),  # no call is always valid
             ([{"name": "f", "arguments": {"n": 0}}], True),  # below the minimum
             ([{"name": "g", "arguments": {}}], True),  # not an offered tool
             ([], False)]  # did not parse
    assert validity(preds, items) == {"n": 5, "parsed": 4, "schema_valid": 2}
