"""Personalized email content: templates, tokens, score-driven slots, lint and previews.

A template (Jinja2 in a sandbox, optional MJML) is compiled once: structure flattened, CSS
inlined, text part derived (:mod:`.compiler`); each customer's tokens are read in bulk from the
warehouse (:mod:`.data`) with the slot variants chosen there (:mod:`.slots`); :class:`Renderer`
(:mod:`.render`) produces :class:`RenderedEmail` values, the contract with delivery
(:mod:`.message`). See docs/content.md. Submodules import Jinja; this package does not.
"""
