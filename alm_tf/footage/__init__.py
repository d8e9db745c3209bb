"""From footage to people: person detectors and a tracker in front of the attribute model."""
