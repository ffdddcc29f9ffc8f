//! The type registry: every type the protocol layer can describe, with its
//! OID, `typlen`, `typtype` and array type, so RowDescription,
//! ParameterDescription and the `pg_type` rows drivers query agree.
//!
//! pgvector's types get fixed OIDs of our own. In PostgreSQL an
//! extension's OIDs depend on the database they were created in; a stable
//! set lets every pgvshard server (and the proxy, which presents one set to
//! its clients whatever its shards use) answer the same. The values sit
//! just above `FirstNormalObjectId` (16384), where a fresh database puts
//! its first extension's types:
//!
//! | type | OID | array OID |
//! |---|---|---|
//! | vector | 16385 | 16390 |
//! | halfvec | 16386 | 16391 |
//! | sparsevec | 16387 | 16392 |

/// Well-known type OIDs.
pub mod oid {
    /// bool.
    pub const BOOL: u32 = 16;
    /// bytea.
    pub const BYTEA: u32 = 17;
    /// "char".
    pub const CHAR: u32 = 18;
    /// name.
    pub const NAME: u32 = 19;
    /// int8.
    pub const INT8: u32 = 20;
    /// int2vector (`pg_index.indkey`).
    pub const INT2VECTOR: u32 = 22;
    /// int2.
    pub const INT2: u32 = 21;
    /// int4.
    pub const INT4: u32 = 23;
    /// text.
    pub const TEXT: u32 = 25;
    /// oid.
    pub const OID: u32 = 26;
    /// regclass.
    pub const REGCLASS: u32 = 2205;
    /// regtype.
    pub const REGTYPE: u32 = 2206;
    /// oidvector (`pg_index.indclass`).
    pub const OIDVECTOR: u32 = 30;
    /// float4.
    pub const FLOAT4: u32 = 700;
    /// void (what functions called for their effect return).
    pub const VOID: u32 = 2278;
    /// float8.
    pub const FLOAT8: u32 = 701;
    /// float4[] (`real[]`, what pgvector casts vectors to).
    pub const FLOAT4_ARRAY: u32 = 1021;
    /// unknown (untyped literals).
    pub const UNKNOWN: u32 = 705;
    /// varchar.
    pub const VARCHAR: u32 = 1043;
    /// date.
    pub const DATE: u32 = 1082;
    /// timestamp (without time zone).
    pub const TIMESTAMP: u32 = 1114;
    /// timestamptz.
    pub const TIMESTAMPTZ: u32 = 1184;
    /// interval.
    pub const INTERVAL: u32 = 1186;
    /// bit.
    pub const BIT: u32 = 1560;
    /// varbit.
    pub const VARBIT: u32 = 1562;
    /// json.
    pub const JSON: u32 = 114;
    /// uuid.
    pub const UUID: u32 = 2950;
    /// jsonb.
    pub const JSONB: u32 = 3802;
    /// jsonpath.
    pub const JSONPATH: u32 = 4072;
    /// pgvector's vector (pgvshard's fixed OID).
    pub const VECTOR: u32 = 16385;
    /// pgvector's halfvec (pgvshard's fixed OID).
    pub const HALFVEC: u32 = 16386;
    /// pgvector's sparsevec (pgvshard's fixed OID).
    pub const SPARSEVEC: u32 = 16387;
}

/// One `pg_type` row, reduced to what the protocol and drivers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgType {
    /// `oid`.
    pub oid: u32,
    /// `typname`.
    pub name: &'static str,
    /// `typlen` (-1 variable length).
    pub len: i16,
    /// `typtype`: b'b' base, b'p' pseudo.
    pub kind: u8,
    /// `typelem`: the element type of an array type, else 0.
    pub elem: u32,
    /// `typarray`: the array type, else 0.
    pub array: u32,
    /// Namespace (`nspname`) the type lives in.
    pub schema: &'static str,
}

const fn base(oid: u32, name: &'static str, len: i16, array: u32, schema: &'static str) -> PgType {
    PgType {
        oid,
        name,
        len,
        kind: b'b',
        elem: 0,
        array,
        schema,
    }
}

const fn array(oid: u32, name: &'static str, elem: u32, schema: &'static str) -> PgType {
    PgType {
        oid,
        name,
        len: -1,
        kind: b'b',
        elem,
        array: 0,
        schema,
    }
}

const PG: &str = "pg_catalog";
const PUBLIC: &str = "public";

/// Every type the layer knows.
pub static TYPES: &[PgType] = &[
    base(oid::BOOL, "bool", 1, 1000, PG),
    base(oid::BYTEA, "bytea", -1, 1001, PG),
    base(oid::CHAR, "char", 1, 1002, PG),
    base(oid::NAME, "name", 64, 1003, PG),
    base(oid::INT8, "int8", 8, 1016, PG),
    base(oid::INT2, "int2", 2, 1005, PG),
    base(oid::INT4, "int4", 4, 1007, PG),
    base(oid::TEXT, "text", -1, 1009, PG),
    base(oid::OID, "oid", 4, 1028, PG),
    base(oid::REGCLASS, "regclass", 4, 2210, PG),
    base(oid::REGTYPE, "regtype", 4, 2211, PG),
    PgType {
        array: 1006,
        ..array(oid::INT2VECTOR, "int2vector", oid::INT2, PG)
    },
    PgType {
        array: 1013,
        ..array(oid::OIDVECTOR, "oidvector", oid::OID, PG)
    },
    base(oid::FLOAT4, "float4", 4, 1021, PG),
    base(oid::FLOAT8, "float8", 8, 1022, PG),
    PgType {
        oid: oid::UNKNOWN,
        name: "unknown",
        len: -2,
        kind: b'p',
        elem: 0,
        array: 0,
        schema: PG,
    },
    PgType {
        oid: oid::VOID,
        name: "void",
        len: 4,
        kind: b'p',
        elem: 0,
        array: 0,
        schema: PG,
    },
    base(oid::VARCHAR, "varchar", -1, 1015, PG),
    base(oid::DATE, "date", 4, 1182, PG),
    base(oid::TIMESTAMP, "timestamp", 8, 1115, PG),
    base(oid::TIMESTAMPTZ, "timestamptz", 8, 1185, PG),
    base(oid::INTERVAL, "interval", 16, 1187, PG),
    base(oid::BIT, "bit", -1, 1561, PG),
    base(oid::VARBIT, "varbit", -1, 1563, PG),
    base(oid::JSON, "json", -1, 199, PG),
    base(oid::UUID, "uuid", 16, 2951, PG),
    base(oid::JSONB, "jsonb", -1, 3807, PG),
    base(oid::JSONPATH, "jsonpath", -1, 4073, PG),
    base(oid::VECTOR, "vector", -1, 16390, PUBLIC),
    base(oid::HALFVEC, "halfvec", -1, 16391, PUBLIC),
    base(oid::SPARSEVEC, "sparsevec", -1, 16392, PUBLIC),
    array(1000, "_bool", oid::BOOL, PG),
    array(1001, "_bytea", oid::BYTEA, PG),
    array(1002, "_char", oid::CHAR, PG),
    array(1003, "_name", oid::NAME, PG),
    array(1005, "_int2", oid::INT2, PG),
    array(1007, "_int4", oid::INT4, PG),
    array(1016, "_int8", oid::INT8, PG),
    array(1009, "_text", oid::TEXT, PG),
    array(1028, "_oid", oid::OID, PG),
    array(2210, "_regclass", oid::REGCLASS, PG),
    array(2211, "_regtype", oid::REGTYPE, PG),
    array(oid::FLOAT4_ARRAY, "_float4", oid::FLOAT4, PG),
    array(1022, "_float8", oid::FLOAT8, PG),
    array(1015, "_varchar", oid::VARCHAR, PG),
    array(1182, "_date", oid::DATE, PG),
    array(1115, "_timestamp", oid::TIMESTAMP, PG),
    array(1185, "_timestamptz", oid::TIMESTAMPTZ, PG),
    array(1187, "_interval", oid::INTERVAL, PG),
    array(1561, "_bit", oid::BIT, PG),
    array(1563, "_varbit", oid::VARBIT, PG),
    array(199, "_json", oid::JSON, PG),
    array(2951, "_uuid", oid::UUID, PG),
    array(3807, "_jsonb", oid::JSONB, PG),
    array(4073, "_jsonpath", oid::JSONPATH, PG),
    array(1006, "_int2vector", oid::INT2VECTOR, PG),
    array(1013, "_oidvector", oid::OIDVECTOR, PG),
    array(16390, "_vector", oid::VECTOR, PUBLIC),
    array(16391, "_halfvec", oid::HALFVEC, PUBLIC),
    array(16392, "_sparsevec", oid::SPARSEVEC, PUBLIC),
];

/// The type with `oid`, if known.
pub fn by_oid(oid: u32) -> Option<&'static PgType> {
    TYPES.iter().find(|t| t.oid == oid)
}

/// The type named `name` (a `typname` or a common SQL alias such as
/// `integer` or `double precision`), if known.
pub fn by_name(name: &str) -> Option<&'static PgType> {
    let lower = name.trim().to_ascii_lowercase();
    let canonical = match lower.as_str() {
        "boolean" => "bool",
        "smallint" => "int2",
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "real" => "float4",
        "double precision" => "float8",
        "character varying" => "varchar",
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        "bit varying" => "varbit",
        other => other,
    };
    if let Some(elem) = canonical.strip_suffix("[]") {
        return by_oid(by_name(elem)?.array);
    }
    TYPES.iter().find(|t| t.name == canonical)
}

/// The array type whose elements are `elem`, if there is one.
pub fn array_of(elem: u32) -> Option<&'static PgType> {
    by_oid(by_oid(elem)?.array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_and_names_are_unique_and_listed_arrays_point_back() {
        for (i, t) in TYPES.iter().enumerate() {
            assert!(TYPES[i + 1..]
                .iter()
                .all(|u| u.oid != t.oid && u.name != t.name));
            if let Some(a) = by_oid(t.array) {
                assert_eq!(a.elem, t.oid, "{}", t.name);
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(by_name("double precision").unwrap().oid, 701);
        assert_eq!(by_name("vector").unwrap().oid, oid::VECTOR);
        assert_eq!(by_oid(oid::SPARSEVEC).unwrap().name, "sparsevec");
        assert!(by_oid(4242).is_none());
        assert_eq!(by_name("integer[]").unwrap().oid, 1007);
        assert_eq!(by_name("_vector").unwrap().elem, oid::VECTOR);
        assert_eq!(array_of(oid::OID).unwrap().oid, 1028);
        for t in TYPES.iter().filter(|t| t.elem != 0 && t.array == 0) {
            assert_eq!(by_oid(t.elem).unwrap().array, t.oid, "{}", t.name);
        }
    }
}
