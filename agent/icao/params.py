"""Standardized domain parameters of PACE (ICAO 9303-11 §9.5.1, table "standardized
domain parameters"; BSI TR-03110-3 §A.2.1.1): ids 0-2 are the MODP groups with
prime-order subgroups of RFC 5114 §2.1-2.3, ids 8-18 NIST and Brainpool curves (3-7
are reserved). The numbers were exported from OpenSSL 3.0 (`openssl ecparam -name X
-param_enc explicit`, `openssl genpkey -genparam -algorithm DHX -pkeyopt
dh_rfc5114:N`) and are checked by the tests (generator on the curve, n·G = O,
g^q = 1, against `cryptography` where it knows the curve).

Public API: ``EcGroup`` and ``DhGroup`` share one small interface (``Group``) that PACE
and Chip Authentication use: ``random_private``, ``mul_generator`` (the standard
generator, fast), ``mul`` (any base, e.g. PACE's mapped generator), ``combine`` (the
group operation: point addition or modular product), ``encode``/``decode`` (public keys,
padded to the field size), ``shared_secret`` (x-coordinate or DH value, padded) and
``order``. ``STANDARD`` maps id → group; ``by_id(pid)`` raises
``UnsupportedParametersError`` for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.errors import ProtocolError
from agent.icao import ec
from agent.icao.ec import Curve
from agent.rng import Rng

#: a group element: an EC point (tuple) or a DH residue (int)
Element = tuple[int, int] | int


class UnsupportedParametersError(ProtocolError):
    """The chip named domain parameters we do not implement."""

    code = "unsupported_parameters"
    exit_code = 6


@dataclass(frozen=True)
class EcGroup:
    """An elliptic-curve group (kind "ECDH")."""

    id: int
    curve: Curve
    kind: str = "ECDH"

    @property
    def name(self) -> str:
        return self.curve.name

    @property
    def order(self) -> int:
        return self.curve.n

    @property
    def generator(self) -> tuple[int, int]:
        return self.curve.generator

    def random_private(self, rng: Rng) -> int:
        return ec.random_scalar(rng, self.curve.n)

    def mul_generator(self, k: int) -> tuple[int, int]:
        return _finite(ec.mul_base(self.curve, k))

    def mul(self, k: int, base: Element) -> tuple[int, int]:
        assert isinstance(base, tuple)
        return _finite(ec.mul(self.curve, k, base))

    def combine(self, first: Element, second: Element) -> tuple[int, int]:
        assert isinstance(first, tuple) and isinstance(second, tuple)
        return _finite(ec.add(self.curve, first, second))

    def encode(self, element: Element) -> bytes:
        assert isinstance(element, tuple)
        return ec.encode_point(self.curve, element)

    def decode(self, data: bytes) -> tuple[int, int]:
        """Raises ValueError for anything but a valid point of this curve."""
        return ec.decode_point(self.curve, data)

    def shared_secret(self, element: Element) -> bytes:
        """9303-11 §9.6: the x-coordinate, padded to the field size."""
        assert isinstance(element, tuple)
        return ec.coordinate_bytes(self.curve, element[0])


def _finite(point: ec.Point) -> tuple[int, int]:
    if point is None:
        raise ValueError("the computation reached the point at infinity")
    return point


@dataclass(frozen=True)
class DhGroup:
    """A MODP group with a prime-order subgroup (kind "DH")."""

    id: int
    name: str
    p: int
    g: int
    q: int
    kind: str = "DH"

    @property
    def order(self) -> int:
        return self.q

    @property
    def generator(self) -> int:
        return self.g

    @property
    def size(self) -> int:
        return (self.p.bit_length() + 7) // 8

    def random_private(self, rng: Rng) -> int:
        return ec.random_scalar(rng, self.q)

    def mul_generator(self, k: int) -> int:
        return pow(self.g, k, self.p)

    def mul(self, k: int, base: Element) -> int:
        assert isinstance(base, int)
        return pow(base, k, self.p)

    def combine(self, first: Element, second: Element) -> int:
        assert isinstance(first, int) and isinstance(second, int)
        return first * second % self.p

    def encode(self, element: Element) -> bytes:
        assert isinstance(element, int)
        return element.to_bytes(self.size, "big")

    def decode(self, data: bytes) -> int:
        """A public value must be in (1, p-1) and in the order-q subgroup
        (small-subgroup attacks, RFC 2785); raises ValueError otherwise."""
        if not data or len(data) > self.size:
            raise ValueError("DH public value has the wrong length")
        value = int.from_bytes(data, "big")
        if not 1 < value < self.p - 1 or pow(value, self.q, self.p) != 1:
            raise ValueError("DH public value is not in the subgroup")
        return value

    def shared_secret(self, element: Element) -> bytes:
        """9303-11 §9.6: the DH value, padded to the size of p."""
        assert isinstance(element, int)
        return element.to_bytes(self.size, "big")


#: the two kinds share one interface (see the module docstring)
Group = EcGroup | DhGroup


def _curve(name: str, *, p: str, a: str, b: str, gx: str, gy: str, n: str) -> Curve:
    return Curve(name, int(p, 16), int(a, 16), int(b, 16), int(gx, 16), int(gy, 16), int(n, 16))


def _modp(name: str, *, p: str, g: str, q: str) -> tuple[str, int, int, int]:
    return (name, int(p, 16), int(g, 16), int(q, 16))


_CURVES: dict[int, Curve] = {
    8: _curve(
        "P-192",
        p="FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFF",
        a="FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFC",
        b="64210519E59C80E70FA7E9AB72243049FEB8DEECC146B9B1",
        gx="188DA80EB03090F67CBF20EB43A18800F4FF0AFD82FF1012",
        gy="7192B95FFC8DA78631011ED6B24CDD573F977A11E794811",
        n="FFFFFFFFFFFFFFFFFFFFFFFF99DEF836146BC9B1B4D22831"),
    9: _curve(
        "brainpoolP192r1",
        p="C302F41D932A36CDA7A3463093D18DB78FCE476DE1A86297",
        a="6A91174076B1E0E19C39C031FE8685C1CAE040E5C69A28EF",
        b="469A28EF7C28CCA3DC721D044F4496BCCA7EF4146FBF25C9",
        gx="C0A0647EAAB6A48753B033C56CB0F0900A2F5C4853375FD6",
        gy="14B690866ABD5BB88B5F4828C1490002E6773FA2FA299B8F",
        n="C302F41D932A36CDA7A3462F9E9E916B5BE8F1029AC4ACC1"),
    10: _curve(
        "P-224",
        p="FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF000000000000000000000001",
        a="FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFE",
        b="B4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4",
        gx="B70E0CBD6BB4BF7F321390B94A03C1D356C21122343280D6115C1D21",
        gy="BD376388B5F723FB4C22DFE6CD4375A05A07476444D5819985007E34",
        n="FFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D"),
    11: _curve(
        "brainpoolP224r1",
        p="D7C134AA264366862A18302575D1D787B09F075797DA89F57EC8C0FF",
        a="68A5E62CA9CE6C1C299803A6C1530B514E182AD8B0042A59CAD29F43",
        b="2580F63CCFE44138870713B1A92369E33E2135D266DBB372386C400B",
        gx="D9029AD2C7E5CF4340823B2A87DC68C9E4CE3174C1E6EFDEE12C07D",
        gy="58AA56F772C0726F24C6B89E4ECDAC24354B9E99CAA3F6D3761402CD",
        n="D7C134AA264366862A18302575D0FB98D116BC4B6DDEBCA3A5A7939F"),
    12: _curve(
        "P-256",
        p="FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF",
        a="FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC",
        b="5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B",
        gx="6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296",
        gy="4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5",
        n="FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"),
    13: _curve(
        "brainpoolP256r1",
        p="A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377",
        a="7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9",
        b="26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6",
        gx="8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262",
        gy="547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997",
        n="A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7"),
    14: _curve(
        "brainpoolP320r1",
        p="D35E472036BC4FB7E13C785ED201E065F98FCFA6F6F40DEF4F92B9EC7893EC28FCD412B1F1B32E27",
        a="3EE30B568FBAB0F883CCEBD46D3F3BB8A2A73513F5EB79DA66190EB085FFA9F492F375A97D860EB4",
        b="520883949DFDBC42D3AD198640688A6FE13F41349554B49ACC31DCCD884539816F5EB4AC8FB1F1A6",
        gx="43BD7E9AFB53D8B85289BCC48EE5BFE6F20137D10A087EB6E7871E2A10A599C710AF8D0D39E20611",
        gy="14FDD05545EC1CC8AB4093247F77275E0743FFED117182EAA9C77877AAAC6AC7D35245D1692E8EE1",
        n="D35E472036BC4FB7E13C785ED201E065F98FCFA5B68F12A32D482EC7EE8658E98691555B44C59311"),
    15: _curve(
        "P-384",
        p=(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF00000000"
            "00000000FFFFFFFF"),
        a=(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF00000000"
            "00000000FFFFFFFC"),
        b=(
            "B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D"
            "2A85C8EDD3EC2AEF"),
        gx=(
            "AA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C"
            "3A545E3872760AB7"),
        gy=(
            "3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D"
            "7A431D7C90EA0E5F"),
        n=(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77A"
            "ECEC196ACCC52973")),
    16: _curve(
        "brainpoolP384r1",
        p=(
            "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B412B1DA197FB71123ACD3A729901D1A71"
            "874700133107EC53"),
        a=(
            "7BC382C63D8C150C3C72080ACE05AFA0C2BEA28E4FB22787139165EFBA91F90F8AA5814A503AD4EB"
            "04A8C7DD22CE2826"),
        b=(
            "4A8C7DD22CE28268B39B55416F0447C2FB77DE107DCD2A62E880EA53EEB62D57CB4390295DBC9943"
            "AB78696FA504C11"),
        gx=(
            "1D1C64F068CF45FFA2A63A81B7C13F6B8847A3E77EF14FE3DB7FCAFE0CBD10E8E826E03436D646AA"
            "EF87B2E247D4AF1E"),
        gy=(
            "8ABE1D7520F9C2A45CB1EB8E95CFD55262B70B29FEEC5864E19C054FF99129280E46462177918111"
            "42820341263C5315"),
        n=(
            "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7CF3AB6AF6B7FC310"
            "3B883202E9046565")),
    17: _curve(
        "brainpoolP512r1",
        p=(
            "AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA703308717D4D9B009BC66842"
            "AECDA12AE6A380E62881FF2F2D82C68528AA6056583A48F3"),
        a=(
            "7830A3318B603B89E2327145AC234CC594CBDD8D3DF91610A83441CAEA9863BC2DED5D5AA8253AA1"
            "0A2EF1C98B9AC8B57F1117A72BF2C7B9E7C1AC4D77FC94CA"),
        b=(
            "3DF91610A83441CAEA9863BC2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A72BF2C7B9E7C1AC4D"
            "77FC94CADC083E67984050B75EBAE5DD2809BD638016F723"),
        gx=(
            "81AEE4BDD82ED9645A21322E9C4C6A9385ED9F70B5D916C1B43B62EEF4D0098EFF3B1F78E2D0D48D"
            "50D1687B93B97D5F7C6D5047406A5E688B352209BCB9F822"),
        gy=(
            "7DDE385D566332ECC0EABFA9CF7822FDF209F70024A57B1AA000C55B881F8111B2DCDE494A5F485E"
            "5BCA4BD88A2763AED1CA2B2FA8F0540678CD1E0F3AD80892"),
        n=(
            "AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA70330870553E5C414CA92619"
            "418661197FAC10471DB1D381085DDADDB58796829CA90069")),
    18: _curve(
        "P-521",
        p=(
            "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"),
        a=(
            "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC"),
        b=(
            "51953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E93"
            "7B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00"),
        gx=(
            "C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBAA14B5E77EFE759"
            "28FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66"),
        gy=(
            "11839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C97EE72995EF42"
            "640C550B9013FAD0761353C7086A272C24088BE94769FD16650"),
        n=(
            "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F9"
            "66B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409")),
}

_MODP: dict[int, tuple[str, int, int, int]] = {
    0: _modp(
        "MODP-1024-160",
        p=(
            "B10B8F96A080E01DDE92DE5EAE5D54EC52C99FBCFB06A3C69A6A9DCA52D23B616073E28675A23D18"
            "9838EF1E2EE652C013ECB4AEA906112324975C3CD49B83BFACCBDD7D90C4BD7098488E9C219A7372"
            "4EFFD6FAE5644738FAA31A4FF55BCCC0A151AF5F0DC8B4BD45BF37DF365C1A65E68CFDA76D4DA708"
            "DF1FB2BC2E4A4371"),
        g=(
            "A4D1CBD5C3FD34126765A442EFB99905F8104DD258AC507FD6406CFF14266D31266FEA1E5C41564B"
            "777E690F5504F213160217B4B01B886A5E91547F9E2749F4D7FBD7D3B9A92EE1909D0D2263F80A76"
            "A6A24C087A091F531DBF0A0169B6A28AD662A4D18E73AFA32D779D5918D08BC8858F4DCEF97C2A24"
            "855E6EEB22B3B2E5"),
        q="F518AA8781A8DF278ABA4E7D64B7CB9D49462353"),
    1: _modp(
        "MODP-2048-224",
        p=(
            "AD107E1E9123A9D0D660FAA79559C51FA20D64E5683B9FD1B54B1597B61D0A75E6FA141DF95A56DB"
            "AF9A3C407BA1DF15EB3D688A309C180E1DE6B85A1274A0A66D3F8152AD6AC2129037C9EDEFDA4DF8"
            "D91E8FEF55B7394B7AD5B7D0B6C12207C9F98D11ED34DBF6C6BA0B2C8BBC27BE6A00E0A0B9C49708"
            "B3BF8A317091883681286130BC8985DB1602E714415D9330278273C7DE31EFDC7310F7121FD5A074"
            "15987D9ADC0A486DCDF93ACC44328387315D75E198C641A480CD86A1B9E587E8BE60E69CC928B2B9"
            "C52172E413042E9B23F10B0E16E79763C9B53DCF4BA80A29E3FB73C16B8E75B97EF363E2FFA31F71"
            "CF9DE5384E71B81C0AC4DFFE0C10E64F"),
        g=(
            "AC4032EF4F2D9AE39DF30B5C8FFDAC506CDEBE7B89998CAF74866A08CFE4FFE3A6824A4E10B9A6F0"
            "DD921F01A70C4AFAAB739D7700C29F52C57DB17C620A8652BE5E9001A8D66AD7C17669101999024A"
            "F4D027275AC1348BB8A762D0521BC98AE247150422EA1ED409939D54DA7460CDB5F6C6B250717CBE"
            "F180EB34118E98D119529A45D6F834566E3025E316A330EFBB77A86F0C1AB15B051AE3D428C8F8AC"
            "B70A8137150B8EEB10E183EDD19963DDD9E263E4770589EF6AA21E7F5F2FF381B539CCE3409D13CD"
            "566AFBB48D6C019181E1BCFE94B30269EDFE72FE9B6AA4BD7B5A0F1C71CFFF4C19C418E1F6EC0179"
            "81BC087F2A7065B384B890D3191F2BFA"),
        q="801C0D34C58D93FE997177101F80535A4738CEBCBF389A99B36371EB"),
    2: _modp(
        "MODP-2048-256",
        p=(
            "87A8E61DB4B6663CFFBBD19C651959998CEEF608660DD0F25D2CEED4435E3B00E00DF8F1D61957D4"
            "FAF7DF4561B2AA3016C3D91134096FAA3BF4296D830E9A7C209E0C6497517ABD5A8A9D306BCF67ED"
            "91F9E6725B4758C022E0B1EF4275BF7B6C5BFC11D45F9088B941F54EB1E59BB8BC39A0BF12307F5C"
            "4FDB70C581B23F76B63ACAE1CAA6B7902D52526735488A0EF13C6D9A51BFA4AB3AD8347796524D8E"
            "F6A167B5A41825D967E144E5140564251CCACB83E6B486F6B3CA3F7971506026C0B857F689962856"
            "DED4010ABD0BE621C3A3960A54E710C375F26375D7014103A4B54330C198AF126116D2276E11715F"
            "693877FAD7EF09CADB094AE91E1A1597"),
        g=(
            "3FB32C9B73134D0B2E77506660EDBD484CA7B18F21EF205407F4793A1A0BA12510DBC15077BE463F"
            "FF4FED4AAC0BB555BE3A6C1B0C6B47B1BC3773BF7E8C6F62901228F8C28CBB18A55AE31341000A65"
            "0196F931C77A57F2DDF463E5E9EC144B777DE62AAAB8A8628AC376D282D6ED3864E67982428EBC83"
            "1D14348F6F2F9193B5045AF2767164E1DFC967C1FB3F2E55A4BD1BFFE83B9C80D052B985D182EA0A"
            "DB2A3B7313D3FE14C8484B1E052588B9B7D2BBD2DF016199ECD06E1557CD0915B3353BBB64E0EC37"
            "7FD028370DF92B52C7891428CDC67EB6184B523D1DB246C32F63078490F00EF8D647D148D4795451"
            "5E2327CFEF98C582664B4C0F6CC41659"),
        q="8CF83642A709A097B447997640129DA299B1A47D1EB3750BA308B0FE64F5FBD3"),
}

STANDARD: dict[int, EcGroup | DhGroup] = {
    **{pid: DhGroup(pid, *values) for pid, values in _MODP.items()},
    **{pid: EcGroup(pid, curve) for pid, curve in _CURVES.items()},
}


def by_id(parameter_id: int) -> EcGroup | DhGroup:
    """The standardized group with this id (9303-11 §9.5.1)."""
    try:
        return STANDARD[parameter_id]
    except KeyError:
        raise UnsupportedParametersError(
            f"domain parameters {parameter_id} are not a standardized PACE group") from None
