"""The pipeline as a LangGraph graph: wiring only. Nodes live in kernelagent/nodes, routing in routing.py.

    load_spec -> generate_test -> generate_seeds -(Send per seed)-> seed_branch -> benchmark
    seed_branch:  verify -> refine -> verify ... -> finish_seed   (until pass, budget, or another seed won)
    benchmark -> autotune -> optimise -> optimise ... -> select     (GPU only; on CPU benchmark -> select)
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from kernelagent.graph.context import RunContext
from kernelagent.graph.routing import (
    fan_out_seeds,
    route_after_benchmark,
    route_after_tuning,
    route_after_verify,
)
from kernelagent.graph.state import RunInput, RunState, SeedOutput, SeedState
from kernelagent.nodes.autotune import autotune
from kernelagent.nodes.benchmark import benchmark
from kernelagent.nodes.finish_seed import finish_seed
from kernelagent.nodes.generate_seeds import generate_seeds
from kernelagent.nodes.generate_test import generate_test
from kernelagent.nodes.load_spec import load_spec
from kernelagent.nodes.optimise import optimise
from kernelagent.nodes.refine import refine
from kernelagent.nodes.select import select
from kernelagent.nodes.verify import verify


def build_seed_graph() -> CompiledStateGraph:
    """One seed's refine loop. Compiled without a saver: it inherits the parent's, so it resumes mid-loop."""
    builder = StateGraph(SeedState, context_schema=RunContext, output_schema=SeedOutput)
    builder.add_node("verify", verify)
    builder.add_node("refine", refine)
    builder.add_node("finish_seed", finish_seed)
    builder.add_edge(START, "verify")
    builder.add_conditional_edges("verify", route_after_verify)
    builder.add_edge("refine", "verify")
    builder.add_edge("finish_seed", END)
    return builder.compile(name="seed_branch")


def build_graph(checkpointer=None) -> CompiledStateGraph:  # noqa: ANN001 - any LangGraph saver
    builder = StateGraph(RunState, context_schema=RunContext, input_schema=RunInput)
    builder.add_node("load_spec", load_spec)
    builder.add_node("generate_test", generate_test)
    builder.add_node("generate_seeds", generate_seeds)
    builder.add_node("seed_branch", build_seed_graph())
    builder.add_node("benchmark", benchmark)
    builder.add_node("autotune", autotune)
    builder.add_node("optimise", optimise)
    builder.add_node("select", select)
    builder.add_edge(START, "load_spec")
    builder.add_edge("load_spec", "generate_test")
    builder.add_edge("generate_test", "generate_seeds")
    builder.add_conditional_edges("generate_seeds", fan_out_seeds, ["seed_branch"])
    builder.add_edge("seed_branch", "benchmark")
    builder.add_conditional_edges("benchmark", route_after_benchmark)
    builder.add_conditional_edges("autotune", route_after_tuning)
    builder.add_conditional_edges("optimise", route_after_tuning)
    builder.add_edge("select", END)
    return builder.compile(checkpointer=checkpointer, name="kernelagent")


# For langgraph.json / `langgraph dev`: no saver of our own (the API server brings its own).
graph = build_graph()
