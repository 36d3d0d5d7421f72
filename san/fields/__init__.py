"""Fields: functions of grid-domain positions (and directions) -> density, colour."""

from san.fields.nerf_field import NeRFField, NeRFFieldConfig, ProposalField, ProposalFieldConfig, trunc_exp

__all__ = ["NeRFField", "NeRFFieldConfig", "ProposalField", "ProposalFieldConfig", "trunc_exp"]
