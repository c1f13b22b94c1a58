"""The claims from Slack in Firestore: collection `P_claims`, one document per claimed item (id
from `<feed>:<key>`), fields: the claim's (lib/state/claims.py) and `due`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from ..claims import Claim
from ..common import guard
from ..run_state import RUN_STATE_DOC, RunState
from .base import FirestoreBase
from .layout import doc_id as _doc_id
from .layout import translate as _translate

_guard = guard(_translate)


class FirestoreClaims(FirestoreBase):
    """`Claims` (lib/state/contract.py) for FirestoreStore."""

    def _legacy_state(self) -> RunState:
        raise NotImplementedError  # FirestoreStore's (lib/state/firestore/store.py)

    @property
    def _claims(self) -> Any:
        return self.client.collection(f"{self.prefix}_claims")

    def _claim_ref(self, claim_id: str) -> Any:
        return self._claims.document(_doc_id(claim_id))

    @staticmethod
    def _doc(claim: Claim) -> dict[str, Any]:
        return {**claim.to_dict(), "due": claim.due}

    @_guard("claim_get")
    def claim_get(self, feed: str, key: str) -> Claim | None:
        snap = self._get(self._claim_ref(f"{feed}:{key}"))
        return Claim.from_dict(snap.to_dict() or {}) if snap.exists else None

    @_guard("claims_of")
    def claims_of(self, items: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Claim]:
        refs = {f"{feed}:{key}": self._claim_ref(f"{feed}:{key}") for feed, key in items}
        if not refs:
            return {}
        found = [Claim.from_dict(snap.to_dict() or {}) for snap in self._get_all(list(refs.values())) if snap.exists]
        return {(c.feed, c.key): c for c in found}

    @_guard("claim_take")
    def claim_take(self, claim: Claim) -> tuple[Claim, bool]:
        ref, run = self._claim_ref(claim.id), self._state.document(RUN_STATE_DOC)
        outcome: list[tuple[Claim, bool]] = []

        @firestore.transactional
        def take(transaction: Any) -> None:
            # Both read in the transaction: two clicks at once cannot both find the item free
            # (Firestore retries the one that lost the race, which then finds the winner's claim).
            outcome.clear()
            self.counters.round_trips += 1
            self.counters.reads += 2
            snaps = {snap.reference.id: snap for snap in transaction.get_all([ref, run], **self._rpc)}
            found = snaps.get(ref.id)
            if found is not None and found.exists:
                outcome.append((Claim.from_dict(found.to_dict() or {}), False))
                return
            transaction.create(ref, self._doc(claim))
            held = snaps.get(RUN_STATE_DOC)
            if held is not None and held.exists:
                due = int((held.to_dict() or {}).get("claims_due") or 0)
                transaction.update(run, {"claims_due": due + 1})
            else:  # a store no run has written the run state of yet: made now, its old parts kept
                state = self._legacy_state()
                transaction.create(run, dataclasses.replace(state, claims_due=state.claims_due + 1).to_dict())
            outcome.append((claim, True))

        take(self.client.transaction())
        if outcome[0][1]:
            self.counters.writes += 2
        return outcome[0]

    @_guard("claim_put")
    def claim_put(self, claim: Claim) -> None:
        batch = self.client.batch()
        batch.set(self._claim_ref(claim.id), self._doc(claim))
        self._commit(batch, writes=1)

    @_guard("claims_due")
    def claims_due(self) -> list[Claim]:
        found = self._stream(self._claims.where(filter=FieldFilter("due", "==", True)))
        claims = [Claim.from_dict(snap.to_dict() or {}) for snap in found]
        return sorted(claims, key=lambda c: (c.claimed_at, c.id))
