//! Small accessors over apache-avro's generic `Value`, so the record mappers
//! read as field lists rather than match pyramids.

use std::borrow::Cow;

use apache_avro::types::Value;
use rust_decimal::Decimal;

use super::decimal::{self, DecimalSpec};
use super::{DecodeError, EncodeError};

/// Field access on a decoded Avro record.
pub(crate) struct Fields<'v>(&'v [(String, Value)]);

impl<'v> Fields<'v> {
    pub(crate) fn of(value: &'v Value, what: &'static str) -> Result<Self, DecodeError> {
        match value {
            Value::Record(fields) => Ok(Self(fields)),
            other => Err(DecodeError::field(
                what,
                format!("expected a record, got {other:?}"),
            )),
        }
    }

    pub(crate) fn get(&self, name: &'static str) -> Result<&'v Value, DecodeError> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| unwrap_union(v))
            .ok_or_else(|| DecodeError::field(name, "missing"))
    }

    pub(crate) fn string(&self, name: &'static str) -> Result<Cow<'static, str>, DecodeError> {
        match self.get(name)? {
            Value::String(s) => Ok(Cow::Owned(s.clone())),
            other => Err(wrong(name, "string", other)),
        }
    }

    pub(crate) fn long(&self, name: &'static str) -> Result<i64, DecodeError> {
        match self.get(name)? {
            Value::Long(v) | Value::TimestampMillis(v) => Ok(*v),
            Value::Int(v) => Ok(i64::from(*v)),
            other => Err(wrong(name, "long", other)),
        }
    }

    pub(crate) fn int(&self, name: &'static str) -> Result<i32, DecodeError> {
        as_int(self.get(name)?, name)
    }

    pub(crate) fn opt_int(&self, name: &'static str) -> Result<Option<i32>, DecodeError> {
        match self.get(name)? {
            Value::Null => Ok(None),
            v => as_int(v, name).map(Some),
        }
    }

    pub(crate) fn boolean(&self, name: &'static str) -> Result<bool, DecodeError> {
        match self.get(name)? {
            Value::Boolean(b) => Ok(*b),
            other => Err(wrong(name, "boolean", other)),
        }
    }

    /// An Avro `date` (days since the epoch).
    pub(crate) fn date(&self, name: &'static str) -> Result<i32, DecodeError> {
        match self.get(name)? {
            Value::Date(d) | Value::Int(d) => Ok(*d),
            other => Err(wrong(name, "date", other)),
        }
    }

    pub(crate) fn opt_decimal(
        &self,
        name: &'static str,
        spec: DecimalSpec,
    ) -> Result<Option<Decimal>, DecodeError> {
        match self.get(name)? {
            Value::Null => Ok(None),
            v => as_decimal(v, spec, name).map(Some),
        }
    }

    /// A string array, in a `Vec` of exactly its length: collecting through
    /// `Result` would start at four slots, and a profile's care team (most
    /// often one member) is held for every patient (BENCHMARKS.md, restart
    /// memory).
    pub(crate) fn strings(&self, name: &'static str) -> Result<Vec<String>, DecodeError> {
        let items = self.array(name)?;
        let mut out = Vec::with_capacity(items.len());
        for v in items {
            match v {
                Value::String(s) => out.push(s.clone()),
                other => return Err(wrong(name, "string items", other)),
            }
        }
        Ok(out)
    }

    pub(crate) fn symbol(&self, name: &'static str) -> Result<&'v str, DecodeError> {
        match self.get(name)? {
            Value::Enum(_, s) => Ok(s),
            other => Err(wrong(name, "enum", other)),
        }
    }

    /// An enum field, mapped through its symbol table.
    pub(crate) fn symbol_in<T: Copy>(
        &self,
        name: &'static str,
        table: &Symbols<T>,
    ) -> Result<T, DecodeError> {
        let symbol = self.symbol(name)?;
        by_symbol(table, symbol)
            .ok_or_else(|| DecodeError::field(name, format!("unknown symbol {symbol}")))
    }

    pub(crate) fn decimal(
        &self,
        name: &'static str,
        spec: DecimalSpec,
    ) -> Result<Decimal, DecodeError> {
        as_decimal(self.get(name)?, spec, name)
    }

    pub(crate) fn array(&self, name: &'static str) -> Result<&'v [Value], DecodeError> {
        match self.get(name)? {
            Value::Array(items) => Ok(items),
            Value::Null => Ok(&[]),
            other => Err(wrong(name, "array", other)),
        }
    }
}

/// Looks through a union branch to the value it holds.
pub(crate) fn unwrap_union(value: &Value) -> &Value {
    match value {
        Value::Union(_, inner) => inner,
        v => v,
    }
}

pub(crate) fn as_int(value: &Value, name: &'static str) -> Result<i32, DecodeError> {
    match unwrap_union(value) {
        Value::Int(v) => Ok(*v),
        other => Err(wrong(name, "int", other)),
    }
}

pub(crate) fn as_decimal(
    value: &Value,
    spec: DecimalSpec,
    name: &'static str,
) -> Result<Decimal, DecodeError> {
    match unwrap_union(value) {
        Value::Decimal(d) => {
            let bytes: Vec<u8> = d
                .try_into()
                .map_err(|e: apache_avro::Error| DecodeError::field(name, e.to_string()))?;
            decimal::from_unscaled_be(&bytes, spec, name)
        }
        Value::Bytes(bytes) => decimal::from_unscaled_be(bytes, spec, name),
        other => Err(wrong(name, "decimal", other)),
    }
}

fn wrong(name: &'static str, expected: &str, got: &Value) -> DecodeError {
    DecodeError::field(name, format!("expected {expected}, got {:?}", kind_of(got)))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int(_) => "int",
        Value::Long(_) => "long",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Record(_) => "record",
        Value::Array(_) => "array",
        Value::Enum(..) => "enum",
        Value::Date(_) => "date",
        Value::Union(..) => "union",
        _ => "other",
    }
}

/// Builds an Avro record value from `(name, value)` pairs.
pub(crate) fn record(fields: Vec<(&'static str, Value)>) -> Value {
    Value::Record(fields.into_iter().map(|(n, v)| (n.to_owned(), v)).collect())
}

/// An Avro decimal value of `value` at `spec`.
pub(crate) fn decimal_value(
    value: Decimal,
    spec: DecimalSpec,
    field: &'static str,
) -> Result<Value, EncodeError> {
    let bytes = decimal::to_unscaled_be(value, spec, field)?;
    Ok(Value::Decimal(apache_avro::Decimal::from(bytes)))
}

/// An enum's values with their Avro symbols, in the schema's symbol order:
/// the one place a codec learns both the symbol names and their indices.
pub(crate) type Symbols<T> = [(T, &'static str)];

/// Index of `value` in its symbol table.
pub(crate) fn symbol_index<T: PartialEq>(table: &Symbols<T>, value: T) -> usize {
    // Every table lists every value of its enum (the round-trip tests cover
    // each), so the fallback is never taken.
    table.iter().position(|(v, _)| *v == value).unwrap_or(0)
}

/// The value named `symbol`, if the table has it.
pub(crate) fn by_symbol<T: Copy>(table: &Symbols<T>, symbol: &str) -> Option<T> {
    table.iter().find(|(_, s)| *s == symbol).map(|(v, _)| *v)
}

/// The Avro enum value of `value`.
pub(crate) fn enum_of<T: PartialEq>(table: &Symbols<T>, value: T) -> Value {
    let index = symbol_index(table, value);
    Value::Enum(index as u32, table[index].1.to_owned())
}

/// An enum value given its symbol list.
pub(crate) fn enum_value(symbols: &[&'static str], index: usize) -> Value {
    // Index comes from a match over our own enum, so it is always in range.
    Value::Enum(index as u32, symbols[index].to_owned())
}

/// A `["null", T]` union value.
pub(crate) fn nullable(value: Option<Value>) -> Value {
    match value {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(v)),
    }
}
