"""A minimal train state: parameters + optax state as a pytree (no static fields, checkpoint-friendly)."""

from __future__ import annotations

from typing import Any

import flax.struct
import optax


@flax.struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    @classmethod
    def create(cls, params, tx):
        return cls(params=params, opt_state=tx.init(params), tx=tx)

    def apply_gradients(self, grads):
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(params=optax.apply_updates(self.params, updates), opt_state=opt_state)
