"""``loretta.demo``: the ``loretta-train`` application, apart from the library.

It fine-tunes a real pretrained model on real labelled data and compares LoRETTA with PEFT's
methods: the default comparison (:mod:`~loretta.demo.experiment`), the multi-seed study of
accuracy per parameter (:mod:`~loretta.demo.study`) and the multitask retention experiment
(:mod:`~loretta.demo.multitask`). It needs the ``demo`` extra (tqdm, matplotlib, peft);
``import loretta`` never imports it. Entry points: the ``loretta-train`` command and
``python -m loretta`` (:func:`loretta.demo.cli.main`).
"""
