"""The paper's TD3 agent (Section IV-C, Algorithm 1), split the way Stable-Baselines3 splits
``td3/td3.py`` from ``td3/policies.py`` and ``common/buffers.py``:

- :mod:`.config`: the hyper-parameters, declared once (they generate ``train``'s flags and the
  study spec keys);
- :mod:`.networks`: actor and critics; :mod:`.buffer`: the replay buffer;
- :mod:`.agent`: acting and the update of Algorithm 1;
- :mod:`.training`: the training loop (it yields step records; logging, checkpoints and
  progress are callbacks around it);
- :mod:`.checkpoint`: weights-only checkpoints; :mod:`.policy`: the ``td3:PATH`` method.
"""
