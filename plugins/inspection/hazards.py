"""Hazard (隐患) lifecycle: which action moves which state, and who may take it (pure).

    open ──assign──► assigned ──start──► rectifying ──submit (photo)──► submitted ──verify──► closed
      │                 │                    ▲                              │
      └──dismiss────────┴──► closed          └─────────reject (note)────────┘

``assign`` again re-assigns (new responsible person or deadline) before submission.
``urge`` and ``escalate`` are the scheduler's entries for an overdue hazard; ``comment``
adds a note in any state.  A closed hazard stays closed (a new finding is a new hazard).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class State(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    RECTIFYING = "rectifying"
    SUBMITTED = "submitted"
    CLOSED = "closed"


class Severity(StrEnum):
    GENERAL = "general"  # 一般火灾隐患
    MAJOR = "major"  # 重大火灾隐患 (GB 35181 criteria)


class Action(StrEnum):
    ASSIGN = "assign"
    START = "start"
    SUBMIT = "submit"
    VERIFY = "verify"
    REJECT = "reject"
    DISMISS = "dismiss"
    COMMENT = "comment"
    URGE = "urge"
    ESCALATE = "escalate"


#: action → (states it may start from, state it leads to; None: unchanged)
MOVES: dict[Action, tuple[frozenset[State], State | None]] = {
    Action.ASSIGN: (frozenset({State.OPEN, State.ASSIGNED, State.RECTIFYING}), State.ASSIGNED),
    Action.START: (frozenset({State.ASSIGNED}), State.RECTIFYING),
    Action.SUBMIT: (frozenset({State.ASSIGNED, State.RECTIFYING}), State.SUBMITTED),
    Action.VERIFY: (frozenset({State.SUBMITTED}), State.CLOSED),
    Action.REJECT: (frozenset({State.SUBMITTED}), State.RECTIFYING),
    Action.DISMISS: (frozenset({State.OPEN, State.ASSIGNED}), State.CLOSED),
    Action.COMMENT: (frozenset(State), None),
    Action.URGE: (frozenset({State.OPEN, State.ASSIGNED, State.RECTIFYING}), None),
    Action.ESCALATE: (frozenset({State.OPEN, State.ASSIGNED, State.RECTIFYING}), None),
}

#: roles that manage rectification (assign, verify, reject, dismiss): 消防安全管理人 and system roles
MANAGE_ROLES = frozenset({"admin", "integrator", "unit_manager"})
#: roles that do the work (start, submit) and report hazards
WORK_ROLES = frozenset({"admin", "integrator", "unit_manager", "duty_officer"})
SYSTEM_ACTIONS = frozenset({Action.URGE, Action.ESCALATE})
#: states in which a hazard can be overdue (the rectification is not in yet)
PENDING = frozenset({State.OPEN, State.ASSIGNED, State.RECTIFYING})


class Refused(Exception):
    """A clear 4xx: ``code`` for programs, ``message`` (en) and ``message_zh`` for people."""

    def __init__(self, status: int, code: str, message: str, message_zh: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.message_zh = status, code, message, message_zh or message


class Step(msgspec.Struct, frozen=True):
    action: Action
    from_state: State
    to_state: State


def check(action: Action, state: State, role: str, *, note: str, photos: list[str], responsible: str) -> Step:
    """The move ``action`` makes from ``state`` for ``role``, or ``Refused`` saying why not."""
    if action in SYSTEM_ACTIONS and role != "system":
        raise Refused(403, "forbidden", f"{action} is the scheduler's", f"{action} 由系统执行")
    allowed, to = MOVES[action]
    if role != "system":
        needed = MANAGE_ROLES if action in (Action.ASSIGN, Action.VERIFY, Action.REJECT, Action.DISMISS) else (
            WORK_ROLES if action in (Action.START, Action.SUBMIT) else None)
        if needed is not None and role not in needed:
            raise Refused(403, "forbidden", f"role {role} may not {action} a hazard", f"角色 {role} 无权执行此操作")
    if state not in allowed:
        raise Refused(409, "bad_state", f"cannot {action} a hazard that is {state}",
                      f"隐患当前状态为 {state}，不能执行 {action}")
    if action is Action.ASSIGN and not responsible.strip():
        raise Refused(400, "bad_request", "assign needs a responsible person", "指派需要填写整改责任人")
    if action is Action.SUBMIT and not photos:
        raise Refused(400, "evidence_required", "submitting a rectification needs at least one photo",
                      "提交整改需要至少一张照片作为凭证")
    if action in (Action.REJECT, Action.DISMISS, Action.COMMENT) and not note.strip():
        raise Refused(400, "note_required", f"{action} needs a note saying why", "请填写说明")
    return Step(action, state, to or state)
