"""Training the detector: real sources and their split, fake families, the GAN stage, the dataset, fine-tuning.

Order of the pipeline: :mod:`.sources` (real photos, leak-free split) → :mod:`.gan`
(a small generator against an ImageNet-initialised ``DetectorNet`` discriminator) →
:mod:`.dataset` (PNG files per split/class/family, using :mod:`.synth` and the GAN's
generator checkpoints) → fine-tuning the discriminator as the detector.

>>> from authenticity.detection.train.sources import Split
>>> [s.value for s in Split]
['train', 'val', 'test']
"""
