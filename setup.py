"""Only what pyproject.toml cannot say: prompts/ stays at the repository's top level (where the LLM's words are
edited) and ships inside the package as kernelagent/prompts/, so a non-editable install finds it too."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["kernelagent*"], exclude=["*__pycache__"]), "kernelagent.prompts"],
    package_dir={"kernelagent.prompts": "prompts"},
    package_data={"kernelagent.prompts": ["*.j2"], "kernelagent.report": ["templates/*.j2"]},
)
