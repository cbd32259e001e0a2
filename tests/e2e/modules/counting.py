"""An external Python module class, fetched by the pilot from its ``url``."""

from frazil.pilot.modules import REQUIRED, Module, Param


class Count(Module):
    """Writes a number to a file and records it as a statistic."""

    parameters = {  # noqa: RUF012 - the Module declaration style
        "n": Param(REQUIRED, "the number"),
        "out": Param("count.txt", "where to write it"),
    }

    def run(self, stats: dict[str, float]) -> None:
        n = self.param_float("n")
        self.path(self.param_str("out")).write_text(f"{n:g}\n")
        stats["counted"] = stats.get("counted", 0.0) + n
