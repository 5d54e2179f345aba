"""The 7-point preference scale shared by the annotation form and imported scores.

Read left to right like the form: -3 A strongly better, -2 clearly, -1 slightly,
0 tie, 1 B slightly better, 2 clearly, 3 strongly.
"""

STRENGTH_NAMES = {1: "slightly", 2: "clearly", 3: "strongly"}


def choice_from_score(score: int) -> tuple[str, int | None]:
    """Map a scale position -3..3 to (choice, strength)."""
    if score == 0:
        return "tie", None
    return ("A" if score < 0 else "B"), abs(score)


def scale_points() -> list[tuple[int, str]]:
    """(value, label) for each of the seven points, left to right."""
    points = []
    for value in range(-3, 4):
        choice, strength = choice_from_score(value)
        points.append((value, "Tie" if choice == "tie" else f"{choice} {STRENGTH_NAMES[strength]} better"))
    return points
