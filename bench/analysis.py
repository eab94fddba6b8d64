"""Why a target is missed: the closing note of bench/RESULTS.md (filled in from the analysis
of the compiled HLO; keys are the target keys of `report.targets`)."""

WHY: dict[str, str] = {}
