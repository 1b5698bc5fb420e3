"""StageInteractor (Teng et al., "StageInteractor: Query-based Object Detector with Cross-stage Interaction",
ICCV 2023): cross-stage label assignment and dual cross-attention for DETR decoders, and the StageInteractor
detector (AdaMixer decoder with cross-stage filter reuse)."""
