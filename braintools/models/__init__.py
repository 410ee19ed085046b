"""Models (notebooks 04-06): 2D smp networks (``smp2d``), the 3D U-Net (``unet3d``), wrappers that shrink inputs
(``wrappers``), 2D-to-3D inflation (``inflation``, ``inflated_blocks``), and self-describing checkpoints.
"""
