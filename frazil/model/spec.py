"""The dataset config: one document that describes every job of a dataset.

Shaped like IceProd 3 dataset configs, so that those load unchanged::

    version, description, options, steering {parameters, system, batchsys, data},
    tasks [ {name, depends, requirements, data, parameters, batchsys, trays [
        {name, iterations, env, parameters, modules [
            {name, src | class + url, args, env_shell, env_clear, configs, parameters} ]} ]} ]

Any string may hold ``$`` expressions; they are evaluated per job (see ``resolve``). These
models check shape and types only; ``validate`` checks what needs the whole document
(unique names, dependencies, references).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from frazil.model.limits import AMOUNT, COUNT, ITERATIONS, Range

#: Task names appear in paths and batch job names: keep them plain.
TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}\Z")  # \Z: "$" lets a final "\n" in
#: Names the database keeps in columns of this size (module, tray, environment, class).
NAME_LENGTH = 255

JSON = Any
Parameters = Annotated[
    dict[str, JSON],
    Field(description="Named values; any string in them may hold $ expressions."),
]
Batchsys = Annotated[
    dict[str, dict[str, JSON]],
    Field(description="Per batch system overrides: {system: {property: value}}."),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _number_or_expression(value: Any, *, bounds: Range, field: str) -> Any:
    """Numbers within ``bounds`` pass, expression strings pass (checked once evaluated),
    numeric strings convert."""
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a number or an expression, got {value!r}")
    if isinstance(value, int | float):
        problem = bounds.problem(value)
        if problem is not None:
            raise ValueError(f"{field} {problem}")
        return int(value) if bounds.integer else value
    if isinstance(value, str):
        if "$" in value:
            return value
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            return _number_or_expression(number, bounds=bounds, field=field)
    raise ValueError(f"{field} must be a number or an expression, got {value!r}")


class DataType(StrEnum):
    """How long a file lives."""

    PERMANENT = "permanent"
    JOB_TEMP = "job_temp"
    DATASET_TEMP = "dataset_temp"
    SITE_TEMP = "site_temp"


class Movement(StrEnum):
    """Which way a file moves, seen from the task."""

    INPUT = "input"
    OUTPUT = "output"
    BOTH = "both"


class Data(_Model):
    """A file to stage in before the task runs, or out after it."""

    remote: str = Field("", description="URL, or a path relative to the site's data base")
    local: str = Field("", description="name in the task's directory (default: remote's)")
    type: DataType = DataType.PERMANENT
    movement: Movement = Movement.INPUT
    transfer: bool | Literal["maybe"] = Field(
        True, description="true, false, or maybe (transfer if it exists)"
    )

    @field_validator("transfer", mode="before")
    @classmethod
    def _transfer(cls, value: Any) -> Any:
        if isinstance(value, str):
            word = value.strip().lower()
            table = {"true": True, "yes": True, "false": False, "no": False, "maybe": "maybe"}
            if word in table:
                return table[word]
            raise ValueError(f"transfer must be true, false or maybe, got {value!r}")
        return value

    @model_validator(mode="after")
    def _names(self) -> Data:
        if not self.remote and not self.local:
            raise ValueError("a data entry needs a remote URL or a local name")
        if self.type is DataType.PERMANENT and not self.remote:
            raise ValueError("a permanent file needs a remote URL")
        return self


class Requirements(BaseModel):
    """What a task needs from a site. Extra keys are site attributes that must match."""

    model_config = ConfigDict(extra="allow", frozen=True)

    cpu: int | str = Field(1, description="CPU cores")
    gpu: int | str = Field(0, description="GPUs")
    memory: float | str = Field(1.0, description="memory in GB")
    disk: float | str = Field(1.0, description="scratch disk in GB")
    time: float | str = Field(1.0, description="wall time in hours")
    os: str | list[str] | None = Field(None, description="operating system(s) accepted")
    site: str | list[str] | None = Field(None, description="site(s) accepted")

    @field_validator("cpu", "gpu", mode="before")
    @classmethod
    def _counts(cls, value: Any, info: Any) -> Any:
        return _number_or_expression(value, bounds=COUNT, field=info.field_name)

    @field_validator("memory", "disk", "time", mode="before")
    @classmethod
    def _amounts(cls, value: Any, info: Any) -> Any:
        return _number_or_expression(value, bounds=AMOUNT, field=info.field_name)


class Env(_Model):
    """A software environment (a meta-project in "The IceProd Framework", §3.6): its name and
    version."""

    name: str = Field(max_length=NAME_LENGTH)
    version: str = Field("", max_length=NAME_LENGTH)


class Module(_Model):
    """One step of a tray: a script or executable (``src``), or a Python class."""

    name: str = Field("", max_length=NAME_LENGTH)
    src: str = Field("", description="script or executable: .py runs under python, .sh under sh")
    class_: str = Field(
        "", alias="class", max_length=NAME_LENGTH, description="importable Python module class"
    )
    url: str = Field("", description="where the class's code comes from")
    args: str | list[JSON] | dict[str, JSON] = Field(
        "", description="a string (split like a shell), a list, or a mapping (--key=value)"
    )
    env_shell: str = Field("", description="script that sets up the environment and runs args")
    env_clear: bool = Field(True, description="start from a clean environment")
    configs: dict[str, JSON] = Field(
        default_factory=dict, description="files written next to the module: {name: content}"
    )
    parameters: Parameters = Field(default_factory=dict)
    data: list[Data] = Field(default_factory=list, description="deprecated: use the task's")

    @field_validator("args", mode="before")
    @classmethod
    def _args(cls, value: Any) -> Any:
        if isinstance(value, str | list | dict):
            return value
        raise ValueError(f"args must be a string, a list or a mapping, got {value!r}")

    @model_validator(mode="after")
    def _what_runs(self) -> Module:
        if bool(self.src) == bool(self.class_):
            raise ValueError("a module needs exactly one of 'src' and 'class'")
        if self.url and not self.class_:
            raise ValueError("'url' only goes with 'class'")
        return self


class Tray(_Model):
    """Modules that run in one software environment, ``iterations`` times over."""

    name: str = Field("", max_length=NAME_LENGTH)
    iterations: int | str = Field(1, description="how many times the tray runs ($args(iter))")
    env: Env | None = None
    parameters: Parameters = Field(default_factory=dict)
    modules: list[Module] = Field(min_length=1)
    data: list[Data] = Field(default_factory=list, description="deprecated: use the task's")

    @field_validator("iterations", mode="before")
    @classmethod
    def _iterations(cls, value: Any) -> Any:
        return _number_or_expression(value, bounds=ITERATIONS, field="iterations")


class Task(_Model):
    """One vertex of a job's DAG: it runs on one site, in one batch job."""

    name: str
    depends: list[str | int] = Field(
        default_factory=list, description="task names, or indexes within the job"
    )
    requirements: Requirements = Field(default_factory=Requirements)
    data: list[Data] = Field(default_factory=list)
    parameters: Parameters = Field(default_factory=dict)
    batchsys: Batchsys = Field(default_factory=dict)
    trays: list[Tray] = Field(min_length=1)
    container: str = Field("", description="container image to run the task in")
    task_files: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not TASK_NAME.match(value):
            raise ValueError(
                "a task name is 1-100 letters, digits, '_', '.' or '-', starting with a "
                f"letter or digit; got {value!r}"
            )
        return value

    @field_validator("depends", mode="before")
    @classmethod
    def _depends(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("depends must be a list of task names or indexes")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise ValueError(f"depends holds task names or indexes, not {item!r}")
        return value


class Steering(_Model):
    """Values shared by every task: parameters, system values, batch options, data."""

    parameters: Parameters = Field(default_factory=dict)
    system: dict[str, JSON] = Field(
        default_factory=dict, description="defaults for $system(); a site's values win"
    )
    batchsys: Batchsys = Field(default_factory=dict)
    data: list[Data] = Field(default_factory=list)


class DatasetConfig(_Model):
    """A whole dataset config."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        frozen=True,
        title="Frazil dataset config",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: float = Field(3.1, description="config format version")
    description: str = ""
    dataset: int | None = Field(None, description="id the dataset had where it came from")
    options: dict[str, JSON] = Field(
        default_factory=dict,
        description="free values ($args) and policy: max_failures, debug, timeouts",
    )
    steering: Steering = Field(default_factory=Steering)
    tasks: list[Task] = Field(min_length=1)

    def task_index(self, name: str) -> int:
        """The index of the task called ``name``; ``KeyError`` if there is none."""
        for i, task in enumerate(self.tasks):
            if task.name == name:
                return i
        raise KeyError(name)


#: Which model describes the entries under each key (for suggestions in error messages).
MODEL_FOR_KEY: dict[str, type[BaseModel]] = {
    "": DatasetConfig,
    "steering": Steering,
    "tasks": Task,
    "trays": Tray,
    "modules": Module,
    "data": Data,
    "env": Env,
    "requirements": Requirements,
}
