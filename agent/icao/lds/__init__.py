"""The Logical Data Structure (ICAO 9303-10): the files of the eMRTD application and
pure parsers for them (bytes → frozen dataclasses; malformed input → ParseError
naming the file and offset)."""

from agent.icao.lds.com import EfCom, parse_com
from agent.icao.lds.dg1 import Dg1, parse_dg1
from agent.icao.lds.dg2 import Dg2, FaceImage, parse_dg2
from agent.icao.lds.dg11 import Dg11, parse_dg11
from agent.icao.lds.dg12 import Dg12, parse_dg12
from agent.icao.lds.dg13 import Dg13, parse_dg13

__all__ = [
    "Dg1", "Dg2", "Dg11", "Dg12", "Dg13", "EfCom", "FaceImage", "parse_com",
    "parse_dg1", "parse_dg2", "parse_dg11", "parse_dg12", "parse_dg13",
]
