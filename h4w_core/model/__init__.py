"""The network, the SMPL-X layer and the checkpoint contract: what the released weights fix."""
