"""Recipes that train and compare several arms end to end: the demo (FocusCLIP vs its CLIP baseline on the
built-in synthetic world)."""
