"""What results say about the operating point they were judged at (no imports: the SR builder is pure)."""

NOT_VALIDATED = (
    "Threshold not yet validated at this site: the model card's default, chosen on its training population. "
    "At a new site its probabilities can be overconfident; the clinic admin adopts a local operating point "
    "from the site's own labelled studies."
)
VALIDATED_SHORT = "Judged at this site's own operating point, adopted from its local labelled studies."
