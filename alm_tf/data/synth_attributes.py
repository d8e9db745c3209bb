"""The attributes of the synthetic pedestrians (`alm_tf.data.synth`).

What each attribute means and where it is on the body, its readable
groups and the optional clothing colours: the schema of `alm-synth`'s data,
kept apart from the Pillow renderer so that the attribute tables
(`alm_tf.data.schemas`) hold it without importing the renderer.
"""

from __future__ import annotations

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_REGIONS",
    "CLOTHING_COLOURS",
    "COLOUR_ATTRIBUTES",
    "COLOUR_GROUPS",
    "GROUPS",
    "REGION_ATTRIBUTES",
    "attributes",
]

#: Each attribute's body region (None: a global attribute).
ATTRIBUTE_REGIONS: dict[str, str | None] = {
    "hat": "head",
    "glasses": "head",
    "long_hair": "head",
    "backpack": "torso",
    "short_sleeves": "torso",
    "skirt": "legs",
    "shorts": "legs",
    "boots": "feet",
    "female": None,
    "dark_clothing": None,
}
ATTRIBUTES: tuple[str, ...] = tuple(ATTRIBUTE_REGIONS)
#: Readable answers for these attributes (`alm_tf.groups`), in the format of
#: a groups file; `boots` stays on its own.
GROUPS: tuple[dict, ...] = (
    {"name": "gender", "kind": "binary", "attributes": ("female",), "values": ("female", "male")},
    {"name": "hair", "kind": "binary", "attributes": ("long_hair",), "values": ("long", "short")},
    {"name": "accessories", "kind": "multi", "attributes": ("hat", "glasses"), "values": ("hat", "glasses")},
    {"name": "carrying", "kind": "multi", "attributes": ("backpack",), "values": ("backpack",)},
    {"name": "sleeves", "kind": "binary", "attributes": ("short_sleeves",), "values": ("short", "long")},
    {"name": "lower", "kind": "multi", "attributes": ("skirt", "shorts"), "values": ("skirt", "shorts")},
    {"name": "clothing", "kind": "binary", "attributes": ("dark_clothing",), "values": ("dark", "light")},
)
REGION_ATTRIBUTES: tuple[str, ...] = tuple(a for a, r in ATTRIBUTE_REGIONS.items() if r)
#: Clothing colours, drawn only on request (`colours=True`; without it the
#: images are the same, byte for byte): the labelled person's upper and lower
#: garments each get one of these, labelled `upper_<colour>` and
#: `lower_<colour>` after `ATTRIBUTES`. Dark clothing (`dark_clothing`) is
#: black; other garments take one of the other colours. Yellow and orange
#: are left out: they are the backpack's and the hat's cue colours.
CLOTHING_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (24, 24, 28), "white": (236, 236, 230), "red": (196, 28, 40), "green": (38, 146, 62),
    "blue": (38, 70, 196), "purple": (120, 50, 150),
}
COLOUR_ATTRIBUTES: tuple[str, ...] = tuple(f"{part}_{c}" for part in ("upper", "lower") for c in CLOTHING_COLOURS)
#: The readable answers of the colour attributes (with `colours=True`).
COLOUR_GROUPS: tuple[dict, ...] = tuple(
    {"name": f"{part}_color", "kind": "exclusive", "attributes": tuple(f"{part}_{c}" for c in CLOTHING_COLOURS),
     "values": tuple(CLOTHING_COLOURS)} for part in ("upper", "lower"))


def attributes(colours: bool = False) -> tuple[str, ...]:
    """The attributes of a data set: `ATTRIBUTES`, then `COLOUR_ATTRIBUTES` with `colours`."""
    return ATTRIBUTES + (COLOUR_ATTRIBUTES if colours else ())
