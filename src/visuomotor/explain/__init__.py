"""Seeing what a policy sees: feature points, saliency, and the Visual Alignment Test.

- `feature_points`: the spatial-softmax feature points of a policy's encoders (Levine et al.
  2016, seed 002), in pixels of the image the network sees;
- `saliency`: FullGrad saliency maps (Srinivas and Fleuret 2019, as used by the encoder
  study, seed 001 section III-D) from the PyTorch twin of a bundle;
- `overlay`: drawing both on "what the policy sees";
- `ttest`: the paired t-test of the Visual Alignment Test (seed 001 section III-C, Table IV).

Pure (torch, numpy, OpenCV); the policy node's live overlays and `visuomotor explain` use it.
"""
