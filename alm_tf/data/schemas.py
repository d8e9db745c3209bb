"""Attribute schemas of the pedestrian attribute data sets.

The evaluated attributes of each data set in the order used by the paper's
code and its released checkpoints (column m of the label lists and of the
logit vectors), with the training-set positive ratios the code uses for
loss weighting.

Each known attribute list also has attribute groups (`Group`): mutually
exclusive attributes answered together by their argmax (age,
orientation, ...), one attribute with a name for yes and for no (gender),
and lists of attributes that may be present together (carrying). Groups
turn a probability vector into a readable answer (`alm_tf.groups`); an
attribute in no group is answered on its own, by its threshold.
"""

from __future__ import annotations

import dataclasses

from alm_tf.data import synth_attributes as _synth

__all__ = [
    "ATTRIBUTE_GROUPS",
    "COLOUR_GROUPS",
    "GROUP_KINDS",
    "Group",
    "PA100K_GROUPS",
    "PETA_GROUPS",
    "RAPV2_GROUPS",
    "RAP_GROUPS",
    "Schema",
    "SCHEMAS",
    "PA100K_ATTRIBUTES",
    "RAP_ATTRIBUTES",
    "PETA_ATTRIBUTES",
    "PETA_TOKENS",
    "RAPV2_SELECTED_COLUMNS",
    "RAPV2_ATTRIBUTES",
    "get_schema",
]


#: How a group answers: `exclusive` the value of its most probable
#: attribute (argmax, thresholds unused); `binary` one attribute, values
#: (if above its threshold, else); `multi` the values of every attribute
#: above its threshold (a list, maybe empty).
GROUP_KINDS = ("exclusive", "binary", "multi")


@dataclasses.dataclass(frozen=True)
class Group:
    """Attributes answered together, with readable values.

    Args:
        name: the answer's key (`age`).
        kind: one of GROUP_KINDS.
        attributes: the attribute names of the group.
        values: readable values: one per attribute (`exclusive`, `multi`),
            or (present, absent) for the single attribute of `binary`.
    """

    name: str
    kind: str
    attributes: tuple[str, ...]
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", tuple(self.attributes))
        object.__setattr__(self, "values", tuple(self.values))
        where = f"group {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip() or "\n" in self.name:
            raise ValueError(f"a group name must be a non-empty single line. Received: name={self.name!r}")
        if self.kind not in GROUP_KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(GROUP_KINDS)}. "
                             f"Received: kind={self.kind!r}")
        for label, items in (("attributes", self.attributes), ("values", self.values)):
            if any(not isinstance(v, str) or not v.strip() for v in items):
                raise ValueError(f"{where}: {label} must be non-empty strings. Received: {list(items)}")
            if len(set(items)) != len(items):
                raise ValueError(f"{where}: {label} repeat a name. Received: {list(items)}")
        if self.kind == "binary":
            if len(self.attributes) != 1 or len(self.values) != 2:
                raise ValueError(f"{where}: a binary group has 1 attribute and 2 values (present, "
                                 f"absent). Received: {len(self.attributes)} attributes, "
                                 f"{len(self.values)} values")
            return
        least = 2 if self.kind == "exclusive" else 1
        if len(self.attributes) < least:
            raise ValueError(f"{where}: a {self.kind} group needs at least {least} attributes. "
                             f"Received: {list(self.attributes)}")
        if len(self.values) != len(self.attributes):
            raise ValueError(f"{where}: {len(self.values)} values for {len(self.attributes)} attributes")


@dataclasses.dataclass(frozen=True)
class Schema:
    """A named, ordered list of attributes with their positive ratios.

    Args:
        name: the data set's name (`pa100k`, `rap`, `peta`).
        attributes: attribute names in the official order.
        positive_ratios: training-set positive ratio of each attribute, or
            empty when unknown.
    """

    name: str
    attributes: tuple[str, ...]
    positive_ratios: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.attributes:
            raise ValueError(f"Schema {self.name!r} has no attributes.")
        if len(set(self.attributes)) != len(self.attributes):
            raise ValueError(f"Schema {self.name!r} has duplicate attribute names.")
        if self.positive_ratios and len(self.positive_ratios) != len(self.attributes):
            raise ValueError(
                f"Schema {self.name!r}: {len(self.positive_ratios)} positive ratios "
                f"for {len(self.attributes)} attributes."
            )

    @property
    def num_attributes(self) -> int:
        """Number of attributes M."""
        return len(self.attributes)


_PA100K = (
    ("Female", 0.460444), ("AgeOver60", 0.0134556), ("Age18-60", 0.924378),
    ("AgeLess18", 0.0621667), ("Front", 0.352667), ("Side", 0.294622),
    ("Back", 0.352711), ("Hat", 0.0435444), ("Glasses", 0.179978),
    ("HandBag", 0.185), ("ShoulderBag", 0.192733), ("Backpack", 0.1601),
    ("HoldObjectsInFront", 0.00952222), ("ShortSleeve", 0.5834),
    ("LongSleeve", 0.4166), ("UpperStride", 0.0494778),
    ("UpperLogo", 0.151044), ("UpperPlaid", 0.107756),
    ("UpperSplice", 0.0419111), ("LowerStripe", 0.00472222),
    ("LowerPattern", 0.0168889), ("LongCoat", 0.0324111),
    ("Trousers", 0.711711), ("Shorts", 0.173444), ("Skirt&Dress", 0.114844),
    ("boots", 0.006),
)

_RAP = (
    ("Female", 0.311434), ("AgeLess16", 0.00998), ("Age17-30", 0.430011),
    ("Age31-45", 0.56001), ("BodyFat", 0.144932), ("BodyNormal", 0.742479),
    ("BodyThin", 0.097728), ("Customer", 0.946303), ("Clerk", 0.048287),
    ("BaldHead", 0.004328), ("LongHair", 0.189323), ("BlackHair", 0.944764),
    ("Hat", 0.016713), ("Glasses", 0.072959), ("Muffler", 0.010461),
    ("Shirt", 0.221186), ("Sweater", 0.123434), ("Vest", 0.057785),
    ("TShirt", 0.228857), ("Cotton", 0.172779), ("Jacket", 0.315186),
    ("Suit-Up", 0.022147), ("Tight", 0.030299), ("ShortSleeve", 0.017843),
    ("LongTrousers", 0.560346), ("Skirt", 0.000553), ("ShortSkirt", 0.027991),
    ("Dress", 0.036624), ("Jeans", 0.268342), ("TightTrousers", 0.133317),
    ("LeatherShoes", 0.302465), ("SportShoes", 0.270891), ("Boots", 0.124059),
    ("ClothShoes", 0.012432), ("CasualShoes", 0.15734), ("Backpack", 0.018132),
    ("SSBag", 0.064182), ("HandBag", 0.028111), ("Box", 0.042155),
    ("PlasticBag", 0.027558), ("PaperBag", 0.012649), ("HandTrunk", 0.024504),
    ("OtherAttchment", 0.294601), ("Calling", 0.034099), ("Talking", 0.0328),
    ("Gathering", 0.091812), ("Holding", 0.024552), ("Pusing", 0.010388),
    ("Pulling", 0.017603), ("CarryingbyArm", 0.023446),
    ("CarryingbyHand", 0.128917),
)

# PETA: evaluated name, positive ratio, and the token the original release
# (Label.txt) and PETA.mat's `attribute` field use for it.
_PETA = (
    ("Age16-30", 0.5016, "personalLess30"),
    ("Age31-45", 0.3275, "personalLess45"),
    ("Age46-60", 0.1023, "personalLess60"),
    ("AgeAbove61", 0.0597, "personalLarger60"),
    ("Backpack", 0.1986, "carryingBackpack"),
    ("CarryingOther", 0.2011, "carryingOther"),
    ("Casual lower", 0.8643, "lowerBodyCasual"),
    ("Casual upper", 0.8559, "upperBodyCasual"),
    ("Formal lower", 0.1342, "lowerBodyFormal"),
    ("Formal upper", 0.1297, "upperBodyFormal"),
    ("Hat", 0.1014, "accessoryHat"),
    ("Jacket", 0.0685, "upperBodyJacket"),
    ("Jeans", 0.314, "lowerBodyJeans"),
    ("Leather Shoes", 0.2932, "footwearLeatherShoes"),
    ("Logo", 0.04, "upperBodyLogo"),
    ("Long hair", 0.2346, "hairLong"),
    ("Male", 0.5473, "personalMale"),
    ("Messenger Bag", 0.2974, "carryingMessengerBag"),
    ("Muffler", 0.0849, "accessoryMuffler"),
    ("No accessory", 0.7523, "accessoryNothing"),
    ("No carrying", 0.2717, "carryingNothing"),
    ("Plaid", 0.0282, "upperBodyPlaid"),
    ("PlasticBags", 0.0749, "carryingPlasticBags"),
    ("Sandals", 0.0191, "footwearSandals"),
    ("Shoes", 0.3633, "footwearShoes"),
    ("Shorts", 0.0359, "lowerBodyShorts"),
    ("Short Sleeve", 0.1425, "upperBodyShortSleeve"),
    ("Skirt", 0.0454, "lowerBodyShortSkirt"),
    ("Sneaker", 0.2201, "footwearSneaker"),
    ("Stripes", 0.0178, "upperBodyThinStripes"),
    ("Sunglasses", 0.0285, "accessorySunglasses"),
    ("Trousers", 0.5125, "lowerBodyTrousers"),
    ("Tshirt", 0.0838, "upperBodyTshirt"),
    ("UpperOther", 0.4605, "upperBodyOther"),
    ("V-Neck", 0.0124, "upperBodyVNeck"),
)

PA100K_ATTRIBUTES: tuple[str, ...] = tuple(n for n, _ in _PA100K)
RAP_ATTRIBUTES: tuple[str, ...] = tuple(n for n, _ in _RAP)
PETA_ATTRIBUTES: tuple[str, ...] = tuple(n for n, _, _ in _PETA)
# Original PETA label token of each evaluated attribute, same order.
PETA_TOKENS: tuple[str, ...] = tuple(t for _, _, t in _PETA)

# RAP v2's 54 evaluated columns of `data` (1-based), as `selected_attribute`.
RAPV2_SELECTED_COLUMNS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 46, 48, 49, 51, 52, 53, 68, 69, 70, 71, 73, 74, 89,
    90, 91, 93, 94, 95, 96, 98, 99, 101, 102, 106, 107, 108, 109, 110, 111,
)

# The names of those 54 columns as RAP v2's `attribute` field spells them
# (its "Femal" included), in column order. The reader takes the names from
# the file; this list checks the shipped mapping files and the file.
RAPV2_ATTRIBUTES: tuple[str, ...] = (
    "Femal", "AgeLess16", "Age17-30", "Age31-45", "Age46-60", "BodyFat", "BodyNormal",
    "BodyThin", "Customer", "Employee", "hs-BaldHead", "hs-LongHair", "hs-BlackHair",
    "hs-Hat", "hs-Glasses", "ub-Shirt", "ub-Sweater", "ub-Vest", "ub-TShirt", "ub-Cotton",
    "ub-Jacket", "ub-SuitUp", "ub-Tight", "ub-ShortSleeve", "ub-Others", "lb-LongTrousers",
    "lb-Skirt", "lb-ShortSkirt", "lb-Dress", "lb-Jeans", "lb-TightTrousers", "shoes-Leather",
    "shoes-Sports", "shoes-Boots", "shoes-Cloth", "shoes-Casual", "shoes-Other",
    "attachment-Backpack", "attachment-ShoulderBag", "attachment-HandBag", "attachment-Box",
    "attachment-PlasticBag", "attachment-PaperBag", "attachment-HandTrunk", "attachment-Other",
    "action-Calling", "action-Talking", "action-Gathering", "action-Holding", "action-Pushing",
    "action-Pulling", "action-CarryingByArm", "action-CarryingByHand", "action-Other",
)

SCHEMAS: dict[str, Schema] = {
    "pa100k": Schema("pa100k", PA100K_ATTRIBUTES, tuple(p for _, p in _PA100K)),
    "rap": Schema("rap", RAP_ATTRIBUTES, tuple(p for _, p in _RAP)),
    "peta": Schema("peta", PETA_ATTRIBUTES, tuple(p for _, p, _ in _PETA)),
}


def get_schema(name: str) -> Schema:
    """Returns the schema called `name` (`pa100k`, `rap` or `peta`)."""
    try:
        return SCHEMAS[name]
    except KeyError:
        raise ValueError(
            f"Unknown schema. Expected one of {sorted(SCHEMAS)}. Received: schema={name!r}"
        ) from None


def _g(name: str, kind: str, *pairs: tuple[str, str]) -> Group:
    return Group(name, kind, tuple(a for a, _ in pairs), tuple(v for _, v in pairs))


def _binary(name: str, attribute: str, present: str, absent: str) -> Group:
    return Group(name, "binary", (attribute,), (present, absent))


# PA-100K: ages and orientations are one-of-three (their positive ratios
# sum to 1), sleeves one-of-two, lower garments one-of-three. LongCoat and
# boots stay on their own.
PA100K_GROUPS: tuple[Group, ...] = (
    _binary("gender", "Female", "female", "male"),
    _g("age", "exclusive", ("AgeOver60", "over 60"), ("Age18-60", "18-60"), ("AgeLess18", "under 18")),
    _g("orientation", "exclusive", ("Front", "front"), ("Side", "side"), ("Back", "back")),
    _g("accessories", "multi", ("Hat", "hat"), ("Glasses", "glasses")),
    _g("carrying", "multi", ("HandBag", "handbag"), ("ShoulderBag", "shoulder bag"),
       ("Backpack", "backpack"), ("HoldObjectsInFront", "object in front")),
    _g("sleeves", "exclusive", ("ShortSleeve", "short"), ("LongSleeve", "long")),
    _g("upper_pattern", "multi", ("UpperStride", "stride"), ("UpperLogo", "logo"),
       ("UpperPlaid", "plaid"), ("UpperSplice", "splice")),
    _g("lower_pattern", "multi", ("LowerStripe", "stripe"), ("LowerPattern", "pattern")),
    _g("lower", "exclusive", ("Trousers", "trousers"), ("Shorts", "shorts"), ("Skirt&Dress", "skirt or dress")),
)

RAP_GROUPS: tuple[Group, ...] = (
    _binary("gender", "Female", "female", "male"),
    _g("age", "exclusive", ("AgeLess16", "under 16"), ("Age17-30", "17-30"), ("Age31-45", "31-45")),
    _g("body", "exclusive", ("BodyFat", "fat"), ("BodyNormal", "normal"), ("BodyThin", "thin")),
    _g("role", "exclusive", ("Customer", "customer"), ("Clerk", "clerk")),
    _g("hair", "multi", ("BaldHead", "bald"), ("LongHair", "long"), ("BlackHair", "black")),
    _g("accessories", "multi", ("Hat", "hat"), ("Glasses", "glasses"), ("Muffler", "muffler")),
    _g("upper", "multi", ("Shirt", "shirt"), ("Sweater", "sweater"), ("Vest", "vest"),
       ("TShirt", "t-shirt"), ("Cotton", "cotton"), ("Jacket", "jacket"), ("Suit-Up", "suit"),
       ("Tight", "tight"), ("ShortSleeve", "short sleeves")),
    _g("lower", "multi", ("LongTrousers", "long trousers"), ("Skirt", "skirt"),
       ("ShortSkirt", "short skirt"), ("Dress", "dress"), ("Jeans", "jeans"),
       ("TightTrousers", "tight trousers")),
    _g("shoes", "multi", ("LeatherShoes", "leather"), ("SportShoes", "sport"), ("Boots", "boots"),
       ("ClothShoes", "cloth"), ("CasualShoes", "casual")),
    _g("carrying", "multi", ("Backpack", "backpack"), ("SSBag", "shoulder bag"),
       ("HandBag", "handbag"), ("Box", "box"), ("PlasticBag", "plastic bag"),
       ("PaperBag", "paper bag"), ("HandTrunk", "hand trunk"), ("OtherAttchment", "other")),
    _g("actions", "multi", ("Calling", "calling"), ("Talking", "talking"), ("Gathering", "gathering"),
       ("Holding", "holding"), ("Pusing", "pushing"), ("Pulling", "pulling"),
       ("CarryingbyArm", "carrying by arm"), ("CarryingbyHand", "carrying by hand")),
)

RAPV2_GROUPS: tuple[Group, ...] = (
    _binary("gender", "Femal", "female", "male"),
    _g("age", "exclusive", ("AgeLess16", "under 16"), ("Age17-30", "17-30"), ("Age31-45", "31-45"),
       ("Age46-60", "46-60")),
    _g("body", "exclusive", ("BodyFat", "fat"), ("BodyNormal", "normal"), ("BodyThin", "thin")),
    _g("role", "exclusive", ("Customer", "customer"), ("Employee", "employee")),
    _g("hair", "multi", ("hs-BaldHead", "bald"), ("hs-LongHair", "long"), ("hs-BlackHair", "black")),
    _g("accessories", "multi", ("hs-Hat", "hat"), ("hs-Glasses", "glasses")),
    _g("upper", "multi", ("ub-Shirt", "shirt"), ("ub-Sweater", "sweater"), ("ub-Vest", "vest"),
       ("ub-TShirt", "t-shirt"), ("ub-Cotton", "cotton"), ("ub-Jacket", "jacket"),
       ("ub-SuitUp", "suit"), ("ub-Tight", "tight"), ("ub-ShortSleeve", "short sleeves"),
       ("ub-Others", "other")),
    _g("lower", "multi", ("lb-LongTrousers", "long trousers"), ("lb-Skirt", "skirt"),
       ("lb-ShortSkirt", "short skirt"), ("lb-Dress", "dress"), ("lb-Jeans", "jeans"),
       ("lb-TightTrousers", "tight trousers")),
    _g("shoes", "multi", ("shoes-Leather", "leather"), ("shoes-Sports", "sport"), ("shoes-Boots", "boots"),
       ("shoes-Cloth", "cloth"), ("shoes-Casual", "casual"), ("shoes-Other", "other")),
    _g("carrying", "multi", ("attachment-Backpack", "backpack"), ("attachment-ShoulderBag", "shoulder bag"),
       ("attachment-HandBag", "handbag"), ("attachment-Box", "box"),
       ("attachment-PlasticBag", "plastic bag"), ("attachment-PaperBag", "paper bag"),
       ("attachment-HandTrunk", "hand trunk"), ("attachment-Other", "other")),
    _g("actions", "multi", ("action-Calling", "calling"), ("action-Talking", "talking"),
       ("action-Gathering", "gathering"), ("action-Holding", "holding"), ("action-Pushing", "pushing"),
       ("action-Pulling", "pulling"), ("action-CarryingByArm", "carrying by arm"),
       ("action-CarryingByHand", "carrying by hand"), ("action-Other", "other")),
)

# PETA: "No accessory" and "No carrying" stay on their own (they are
# predictions of their own, not the empty list of the groups).
PETA_GROUPS: tuple[Group, ...] = (
    _binary("gender", "Male", "male", "female"),
    _g("age", "exclusive", ("Age16-30", "16-30"), ("Age31-45", "31-45"), ("Age46-60", "46-60"),
       ("AgeAbove61", "over 60")),
    _binary("hair", "Long hair", "long", "short"),
    _g("accessories", "multi", ("Hat", "hat"), ("Muffler", "muffler"), ("Sunglasses", "sunglasses")),
    _g("carrying", "multi", ("Backpack", "backpack"), ("Messenger Bag", "messenger bag"),
       ("PlasticBags", "plastic bags"), ("CarryingOther", "other")),
    _g("upper_style", "exclusive", ("Casual upper", "casual"), ("Formal upper", "formal")),
    _g("lower_style", "exclusive", ("Casual lower", "casual"), ("Formal lower", "formal")),
    _g("upper", "multi", ("Jacket", "jacket"), ("Logo", "logo"), ("Plaid", "plaid"),
       ("Short Sleeve", "short sleeves"), ("Stripes", "stripes"), ("Tshirt", "t-shirt"),
       ("UpperOther", "other"), ("V-Neck", "v-neck")),
    _g("lower", "multi", ("Jeans", "jeans"), ("Shorts", "shorts"), ("Skirt", "skirt"),
       ("Trousers", "trousers")),
    _g("footwear", "multi", ("Leather Shoes", "leather shoes"), ("Sandals", "sandals"),
       ("Shoes", "shoes"), ("Sneaker", "sneakers")),
)

#: Clothing colours: RAP and PETA annotate upper- and lower-body colours
#: beyond the paper's attribute lists; a conversion keeps them with
#: --all_attributes (alm_tf/data/README.md), under these names (RAP's
#: `attribute_eng`, PETA's label tokens). `alm_tf.groups.infer` answers them
#: as `upper_color` / `lower_color` (`multi`: a person may wear several),
#: with the colours the data set has.
_RAP_UPPER_COLOURS = ("Black", "White", "Gray", "Red", "Green", "Blue", "Yellow", "Brown", "Purple", "Pink",
                      "Orange", "Mixture")
_RAP_LOWER_COLOURS = ("Black", "White", "Gray", "Red", "Green", "Blue", "Yellow", "Mixture")
_PETA_COLOURS = ("Black", "Blue", "Brown", "Green", "Grey", "Orange", "Pink", "Purple", "Red", "White", "Yellow")


def _colour_group(name: str, prefix: str, colours: tuple[str, ...]) -> Group:
    return Group(name, "multi", tuple(prefix + c for c in colours), tuple(c.lower() for c in colours))


COLOUR_GROUPS: dict[str, tuple[Group, ...]] = {
    "rap": (_colour_group("upper_color", "up-", _RAP_UPPER_COLOURS),
            _colour_group("lower_color", "low-", _RAP_LOWER_COLOURS)),
    "peta": (_colour_group("upper_color", "upperBody", _PETA_COLOURS),
             _colour_group("lower_color", "lowerBody", _PETA_COLOURS)),
    "synth": tuple(Group(**g) for g in _synth.COLOUR_GROUPS),  # alm-synth's colours (SynthConfig.colours)
}

#: The groups of every known attribute list: name -> (attributes, groups).
#: `alm_tf.groups.infer` picks the entry whose list is the model's (or the
#: manifest's `dataset`); `synth` is alm-synth's list.
ATTRIBUTE_GROUPS: dict[str, tuple[tuple[str, ...], tuple[Group, ...]]] = {
    "pa100k": (PA100K_ATTRIBUTES, PA100K_GROUPS),
    "rap": (RAP_ATTRIBUTES, RAP_GROUPS),
    "rapv2": (RAPV2_ATTRIBUTES, RAPV2_GROUPS),
    "peta": (PETA_ATTRIBUTES, PETA_GROUPS),
    "synth": (_synth.ATTRIBUTES, tuple(Group(**g) for g in _synth.GROUPS)),
}
