"""The project's own error types, in one list, for the places that turn them into one-line messages
(the ``san`` commands).

Every one of them is raised for bad input or a bad file and names the file or the config key; none
stands for a bug. Each module keeps its own class (beside the code that raises it); this module only
collects them, importing lazily so that ``san --help`` stays fast.
"""

from __future__ import annotations


def project_errors() -> tuple[type[BaseException], ...]:
    """The exception classes reported as ``san <command>: error: ...`` (exit code 1)."""
    from san.config import ConfigError
    from san.data.scene import SceneError
    from san.features.cache import FeatureCacheError
    from san.interaction.prompts import PromptError
    from san.interaction.session import SessionError
    from san.layout import MissingStageError
    from san.teachers.base import TeacherError
    from san.trained_scene import TeacherMismatchError
    from san.utils.checkpoint import CheckpointError
    from san.utils.checks import NonFiniteError
    from san.utils.io import DiskFullError
    from san.utils.tsv import SheetError

    return (
        ConfigError,
        SceneError,
        FeatureCacheError,
        SessionError,
        MissingStageError,
        PromptError,
        TeacherError,
        CheckpointError,
        NonFiniteError,
        DiskFullError,
        SheetError,
        TeacherMismatchError,
    )
