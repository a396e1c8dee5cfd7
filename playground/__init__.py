"""The playground page: the learner's own checkpoint in the browser (``python play.py``).

``views`` computes what each part of the page shows; ``server`` is the FastAPI app serving it as JSON and the static
page in ``static/`` (plain HTML, CSS and JavaScript, no build step, no network) that draws it.
"""
