"""The judge's draw plan: which second shape a problem gets (verify/reference.py), on the CPU."""

from __future__ import annotations

from pathlib import Path

from kernelagent.verify.reference import Reference

CROSS_ENTROPY = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def forward(self, predictions, targets):
        return torch.nn.functional.cross_entropy(predictions, targets)

batch_size = 64
num_classes = 40
input_shape = (num_classes,)

def get_inputs():
    return [torch.rand(batch_size, *input_shape), torch.randint(0, num_classes, (batch_size,))]

def get_init_inputs():
    return []
'''


def _plan(tmp_path: Path, source: str) -> list[str]:
    problem = tmp_path / "problem.py"
    problem.write_text(source)
    return [draw.label for draw in Reference({"device": "cpu", "problem_path": str(problem), "draws": 1}).plan]


def test_a_size_baked_into_another_constant_stays_fixed(tmp_path: Path) -> None:
    # KernelBench's cross-entropy: changing num_classes alone draws targets past the class count (on a GPU, a
    # device-side assert that ends the judge's CUDA context); batch_size alone is a valid second shape.
    plan = _plan(tmp_path, CROSS_ENTROPY)
    second = [label for label in plan if label.startswith("second shape")]
    assert second == ["second shape batch_size=97"], plan


def test_free_sizes_all_change(tmp_path: Path) -> None:
    plan = _plan(tmp_path, CROSS_ENTROPY.replace("input_shape = (num_classes,)\n", "").replace(
        "*input_shape", "num_classes"))
    assert "second shape batch_size=97,num_classes=61" in plan, plan
