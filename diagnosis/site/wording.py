"""What results say about the operating point they were judged at (no imports: the SR builder is pure). English,
marked for the catalog: the pages and the SR translate them when they show them (gettext(NOT_VALIDATED))."""


def gettext_noop(message: str) -> str:
    """Marks a message for makemessages (which knows this name) without importing Django."""
    return message


NOT_VALIDATED = gettext_noop(
    "Threshold not yet validated at this site: the model card's default, chosen on its training population. "
    "At a new site its probabilities can be overconfident; the clinic admin adopts a local operating point "
    "from the site's own labelled studies."
)
VALIDATED_SHORT = gettext_noop("Judged at this site's own operating point, adopted from its local labelled studies.")
