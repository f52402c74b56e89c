"""The built-in synthetic world: articulated MPII-skeleton figures doing 12 activities, with three age
groups (body proportions) and five facial expressions, on cluttered backgrounds with distractors.

``generate_world(out_dir, n, seed)`` writes images, ``train/val/eval.jsonl`` records and
``classes.json``; ``render_sample(rng)`` renders one scene in memory; ``contact_sheet`` draws a grid.
Modules: :mod:`.classes` (class names), :mod:`.pose` (proportions, angle ranges, forward kinematics),
:mod:`.figures` (drawing people and faces), :mod:`.scene` (backgrounds, props, distractor objects),
:mod:`.world` (composition and the generator), :mod:`.sheet` (contact sheets).
"""

from focusclip.data.synthetic.classes import (
    ACTIVITIES,
    ACTIVITY_CATEGORIES,
    AGE_GROUPS,
    EXPRESSIONS,
    class_lists,
)
from focusclip.data.synthetic.pose import (
    POSE_RANGES,
    Pose,
    Proportions,
    forward_kinematics,
    sample_pose,
    sample_proportions,
)
from focusclip.data.synthetic.sheet import contact_sheet
from focusclip.data.synthetic.world import (
    SyntheticSample,
    generate_world,
    make_record,
    render_item,
    render_sample,
    sample_rng,
)

__all__ = [
    "ACTIVITIES",
    "ACTIVITY_CATEGORIES",
    "AGE_GROUPS",
    "EXPRESSIONS",
    "POSE_RANGES",
    "Pose",
    "Proportions",
    "SyntheticSample",
    "class_lists",
    "contact_sheet",
    "forward_kinematics",
    "generate_world",
    "make_record",
    "render_item",
    "render_sample",
    "sample_pose",
    "sample_proportions",
    "sample_rng",
]
