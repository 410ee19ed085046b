"""Evaluation (notebooks 04-07): how good is a segmentation?

- ``overlap``: the one overlap-count kernel (overlap, predicted and true voxels per region), NumPy or torch, and the
  empty-region rules by name (``brats``, ``ignore``, ``undefined``);
- ``dice``: Dice from two masks or from counts (training validation and threshold search pool counts);
- ``hd95``: the 95th-percentile Hausdorff distance in mm, and voxel spacing;
- ``metrics``: sensitivity, specificity, and every metric of the regions WT, TC, ET of two class maps;
- ``cases``: segment and score a list of cases (notebook 07), or a folder of saved predictions (``evaluate``);
- ``comparison``: how sure a difference between two settings is, at this number of cases;
- ``conclusions``: what such a comparison supports, as the sentence a notebook prints under its table;
- ``stored_results``: scores measured earlier on real cases, shown (marked as stored) when a run has none at hand.
"""
