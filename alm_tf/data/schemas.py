"""Attribute schemas of the pedestrian attribute data sets.

The evaluated attributes of each data set in the order used by the paper's
code and its released checkpoints (column m of the label lists and of the
logit vectors), with the training-set positive ratios the code uses for
loss weighting. Source: `shared/reference/attributes_and_priors.md`.
"""

from __future__ import annotations

import dataclasses

__all__ = [
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
