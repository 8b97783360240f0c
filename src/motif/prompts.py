"""The protocol's texts: system prompts, each round's user turn and its chat.

Pure strings, no torch and no parsing. The ``paper`` texts reproduce the reference
implementation (purbeshmitra/MOTIF) character for character; see ``docs/protocol.md``. Which
round gets which chat, and what it carries, is the carry-over's (:mod:`motif.carryover`).
"""

from __future__ import annotations

Message = dict[str, str]
Chat = list[Message]

_ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
)

VANILLA_SYSTEM_PROMPT = (
    "You are a helpful assistant.\n"
    "When the user asks a question, you first think about the reasoning process in mind "
    "and then provide the user with an answer.\n"
    "The reasoning process and the answer are enclosed within <reasoning> </reasoning> and "
    "<answer> </answer> tags, respectively.\n"
    "In your answer, you also enclose your final answer in the box: \\boxed{}.\n"
    "Therefore, you respond in the following strict format:\n"
    "<reasoning>\n"
    "reasoning process here\n"
    "</reasoning>\n"
    "<answer>\n"
    "answer here\n"
    "</answer>"
)

_MULTI_ROUND_TEMPLATE = (
    "\n"
    "You are a helpful assistant. When the user asks a question, you solve it in {n} rounds.\n"
    "In each round, you first think about the reasoning process of answering and then provide "
    "the user with a detailed progress about it.\n"
    "The reasoning process and the progress are enclosed within <reasoning> </reasoning> and "
    "<answer> </answer> tags respectively.\n"
    "Therefore, you follow the strict format:\n"
    "<reasoning>\n"
    "reasoning process here\n"
    "</reasoning>\n"
    "<answer>\n"
    "detailed progress here\n"
    "</answer>\n"
    "\n"
    "The User provides this detailed progress as additional context in the next round.\n"
    "You then respond again with further thinking and further progress.\n"
    "When the User says that current round is the final ({ordinal}) round, you provide an "
    "answer inside the answer tags.\n"
    "You also enclose a final answer in {ordinal} round in the box: \\boxed{{}}. "
    "Only this boxed final answer is used for evaluation.\n"
)


def ordinal(n: int) -> str:
    """English ordinal word for ``n`` ("third"), falling back to "11th" style past ten."""
    if 1 <= n <= len(_ORDINALS):
        return _ORDINALS[n - 1]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _check_rounds(rounds: int) -> None:
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")


def system_prompt(rounds: int) -> str:
    """System prompt for an ``rounds``-round protocol.

    ``rounds == 1`` is the reference's vanilla GRPO prompt; ``rounds == 3`` is the paper's
    MOTIF prompt exactly; other values generalise the MOTIF prompt's round count and ordinal.
    """
    _check_rounds(rounds)
    if rounds == 1:
        return VANILLA_SYSTEM_PROMPT
    return _MULTI_ROUND_TEMPLATE.format(n=rounds, ordinal=ordinal(rounds))


def user_parts(
    question: str, round_index: int, rounds: int, summary: str | None = None
) -> tuple[str, str | None, str]:
    """The user turn of round ``round_index`` as ``(before, carried, after)``.

    ``carried`` is the previous round's summary as it sits in the turn (``""`` for an empty
    one), None in round 1, which carries nothing; the turn is ``before + carried + after``.
    A backend that must shorten the carried text cuts ``carried`` alone
    (:class:`RoundChat`), never the question or the round instructions.

    Raises:
        ValueError: ``rounds < 1`` or ``round_index`` outside ``1..rounds``.
    """
    _check_rounds(rounds)
    if not 1 <= round_index <= rounds:
        raise ValueError(f"round_index must be in 1..{rounds}, got {round_index}")
    before, carried, after = _progress_parts(question, round_index, summary)
    if rounds > 1 and round_index == rounds:
        after += f" Current round is the final ({ordinal(rounds)}) round. Provide a final answer."
    return before, carried, after


def _progress_parts(
    question: str, round_index: int, summary: str | None
) -> tuple[str, str | None, str]:
    """``(before, carried, after)`` of round ``round_index``'s user turn without any
    final-round instruction: the question, then from round 2 the previous round's summary in
    quotes (``carried`` None in round 1)."""
    if round_index == 1:
        return question, None, ""
    return question + f' Progress in round {round_index - 1}: "', summary or "", '"'


def user_message(question: str, round_index: int, rounds: int, summary: str | None = None) -> str:
    """The user turn of round ``round_index`` (1-based) out of ``rounds``.

    Round 1 is the question unchanged. A later round appends only the previous round's
    summary; the last round of a multi-round protocol also appends the final-round
    instruction (:func:`user_parts` gives the same text in its three parts).
    """
    before, carried, after = user_parts(question, round_index, rounds, summary)
    return before + (carried or "") + after


class RoundChat(list):
    """A round's chat (a list of messages, usable wherever a :data:`Chat` is) that knows
    where the carried text sits in its last message.

    ``carried`` is ``(before, text, after)`` with ``before + text + after`` the last
    message's content, or None when the round carries nothing. A backend shortens the
    carried text structurally with :meth:`with_carried`, whatever the wording around it.
    """

    def __init__(self, messages: Chat, carried: tuple[str, str, str] | None = None) -> None:
        super().__init__(messages)
        self.carried = carried

    def with_carried(self, text: str) -> RoundChat:
        """The same chat with ``text`` carried instead (its last message rebuilt).

        Raises:
            ValueError: the chat carries nothing.
        """
        if self.carried is None:
            raise ValueError("this round's chat carries no text to replace")
        before, _, after = self.carried
        last = {**self[-1], "content": before + text + after}
        return RoundChat([*self[:-1], last], (before, text, after))


def round_messages(
    question: str, round_index: int, rounds: int, summary: str | None = None
) -> RoundChat:
    """The two-message chat (system, user) of one round: each round is a fresh chat.

    A :class:`RoundChat`: it knows where the carried summary sits in the user turn.
    """
    before, carried, after = user_parts(question, round_index, rounds, summary)
    chat = [
        {"role": "system", "content": system_prompt(rounds)},
        {"role": "user", "content": before + (carried or "") + after},
    ]
    return RoundChat(chat, None if carried is None else (before, carried, after))


def fold_system(chat: Chat) -> Chat:
    """The chat with a leading system message folded into the first user turn.

    For a chat template that refuses the system role (Gemma's ``raise_exception('System role
    not supported')``): the system text, a blank line, then the user's text, the layout
    Gemma 3's own template gives a system message. A chat without a leading system message,
    or without a user message after it, is returned unchanged (a new list).
    """
    if len(chat) < 2 or chat[0]["role"] != "system" or chat[1]["role"] != "user":
        return list(chat)
    user = {**chat[1], "content": f"{chat[0]['content']}\n\n{chat[1]['content']}"}
    return [user, *chat[2:]]


# --------------------------------------------------------------------------- model-ended rounds
# InftyThink (arXiv 2503.06692) and InftyThink+ (arXiv 2602.06960): the model ends each round
# itself, with a summary for the next round or a conclusion that ends the trajectory, within a
# cap of phi rounds. Their own texts use <think>/<summary>/<history> tags; these are motif's
# wording in its answer format (<reasoning>/<answer>, the conclusion boxed), so the same
# readers, rewards and carried-text rule apply. Unlike MOTIF's prompt, it never says how many
# rounds there are: only the last round's user turn says that it must conclude.

MODEL_ENDED_SYSTEM_PROMPT = (
    "You are a helpful assistant. When the user asks a question, you solve it over one or "
    "more rounds, and you decide when you are done.\n"
    "In each round, you first think about the reasoning process and then write, inside the "
    "answer tags, one of two things:\n"
    "- a conclusion: when you have solved the question, the final answer enclosed in the box "
    "\\boxed{}. This ends your solution, and only this boxed final answer is used for "
    "evaluation.\n"
    "- a progress summary: when you have not solved it yet, a detailed summary of your "
    "progress and of what remains to be done, without a box. The User provides it as "
    "additional context in the next round, and you continue from it.\n"
    "Therefore, you follow the strict format:\n"
    "<reasoning>\n"
    "reasoning process here\n"
    "</reasoning>\n"
    "<answer>\n"
    "boxed final answer, or progress summary, here\n"
    "</answer>\n"
    "When the User says that the current round is the last one, you conclude: you provide "
    "the final answer in the box."
)
"""The system prompt of rounds the model ends itself (``--round-end model``), every round."""


def last_round_instruction(max_rounds: int) -> str:
    """What round ``max_rounds`` (phi, the cap) appends to its user turn: conclude now."""
    return (
        f" Current round is the last one (round {max_rounds} of at most {max_rounds}). "
        "Conclude: provide the final answer in \\boxed{}."
    )


def model_ended_messages(
    question: str, round_index: int, max_rounds: int, summary: str | None = None
) -> RoundChat:
    """The two-message chat (system, user) of round ``round_index`` (1-based) when the model
    ends its rounds itself, within a cap of ``max_rounds`` (phi).

    The system prompt is :data:`MODEL_ENDED_SYSTEM_PROMPT` in every round; the user turn is
    the question, from round 2 the previous round's summary carried exactly as MOTIF carries
    it (the :class:`RoundChat` knows where it sits), and in round ``max_rounds`` the
    instruction to conclude (:func:`last_round_instruction`).

    Raises:
        ValueError: ``max_rounds < 1`` or ``round_index`` outside ``1..max_rounds``.
    """
    _check_rounds(max_rounds)
    if not 1 <= round_index <= max_rounds:
        raise ValueError(f"round_index must be in 1..{max_rounds}, got {round_index}")
    before, carried, after = _progress_parts(question, round_index, summary)
    if round_index == max_rounds:
        after += last_round_instruction(max_rounds)
    chat = [
        {"role": "system", "content": MODEL_ENDED_SYSTEM_PROMPT},
        {"role": "user", "content": before + (carried or "") + after},
    ]
    return RoundChat(chat, None if carried is None else (before, carried, after))
