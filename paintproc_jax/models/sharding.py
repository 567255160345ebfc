"""Logical axis names -> mesh PartitionSpecs, for parameters and activations.

Every parameter carries logical names (`nnx.with_partitioning`); the rules in the model config map
them to the (`data`, `fsdp`, `context`, `tensor`) mesh. The same rules constrain activations.
"""

from __future__ import annotations

import jax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec


def logical_spec(names, rules, mesh_axes=None) -> PartitionSpec:
    """Logical names (one per array axis; None = replicated) -> PartitionSpec; mesh axes the mesh
    lacks are dropped, and no mesh axis is used twice. A name the rules lack raises ValueError
    (a rule maps it to None to replicate it)."""
    table = dict(rules)
    used: set[str] = set()
    out = []
    for name in names:
        if name is not None and name not in table:
            raise ValueError(f"unknown logical axis {name!r}: model.rules name {', '.join(sorted(table))}")
        target = table.get(name) if name is not None else None
        axes = (target,) if isinstance(target, str) else tuple(target or ())
        axes = tuple(a for a in axes if (mesh_axes is None or a in mesh_axes) and a not in used)
        used.update(axes)
        out.append(None if not axes else axes[0] if len(axes) == 1 else axes)
    return PartitionSpec(*out)


def constrain(x: jax.Array, names, rules) -> jax.Array:
    """`with_sharding_constraint` by logical names under the current mesh (no-op without one)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return x
    return jax.lax.with_sharding_constraint(x, logical_spec(names, rules, mesh.axis_names))


def param_specs(tree, rules):
    """PartitionSpec of every variable of a module or State (same tree, each Variable holding its spec)."""
    state = tree if isinstance(tree, nnx.State) else nnx.state(tree)

    def spec(v):
        names = v.get_metadata().get("out_sharding")
        return v.replace(logical_spec(names, rules) if names else PartitionSpec())

    return jax.tree.map(spec, state, is_leaf=lambda v: isinstance(v, nnx.Variable))


def param_shardings(tree, rules, mesh):
    """NamedSharding of every variable of a module or State on `mesh` (axes the mesh lacks: replicated)."""
    state = tree if isinstance(tree, nnx.State) else nnx.state(tree)

    def sharding(v):
        names = v.get_metadata().get("out_sharding")
        return v.replace(NamedSharding(mesh, logical_spec(names or (), rules, mesh.axis_names)))

    return jax.tree.map(sharding, state, is_leaf=lambda v: isinstance(v, nnx.Variable))
