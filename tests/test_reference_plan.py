"""The judge's draw plan: which second shape a problem gets (verify/reference.py), on the CPU."""

from __future__ import annotations

from pathlib import Path

import torch

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


# KernelBench level 3 shapes that broke the float64 twin on the H200 (the judge failed on every draw): a forward that
# makes a tensor without a dtype (35_LSTM's h0), and a layer reached through a lambda kept as an attribute
# (44_MiniGPTBlock's `self.mlpf = lambda x: m.c_proj(m.c_fc(x))`, which a deep copy shares with the original).
TWIN_TROUBLE = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = nn.ModuleDict(dict(fc=nn.Linear(8, 8)))
        m = self.mlp
        self.mlpf = lambda x: m.fc(x)

    def forward(self, x):
        offset = torch.full((x.shape[0], 8), 0.5, device=x.device)
        return self.mlpf(x) + offset

def get_inputs():
    return [torch.rand(4, 8)]

def get_init_inputs():
    return []
'''


def test_the_float64_twin_runs_its_own_layers_and_makes_float64_tensors(tmp_path: Path) -> None:
    problem = tmp_path / "problem.py"
    problem.write_text(TWIN_TROUBLE)
    reference = Reference({"device": "cpu", "problem_path": str(problem), "draws": 1})
    inputs, expected, low = reference.draw(reference.plan[0])
    assert expected[0].dtype == torch.float64 and low[0].dtype == torch.float32
    assert reference.high.mlpf.__closure__[0].cell_contents is reference.high.mlp
    assert torch.allclose(expected[0].float(), low[0], atol=1e-5)
    assert torch.get_default_dtype() == torch.float32  # restored after the twin's run
