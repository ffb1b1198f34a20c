//! Sequence files: `user item1 item2 …` lines, a user's items in time order.

use std::path::Path;

use ember_spec::lines::LineLimit;

use crate::text::{fields, numbered_lines, parse_id, read_text};
use crate::{DataError, Interactions, Result};

/// `user item1 item2 …` lines.
pub(super) fn read_sequences(path: &Path, limit: LineLimit) -> Result<Interactions> {
    let text = read_text(path, limit)?;
    let mut out = Interactions {
        timestamps: Some(Vec::new()),
        ..Default::default()
    };
    for (line, content) in numbered_lines(&text) {
        let f = fields(content, " ");
        if f.len() < 2 {
            return Err(DataError::Parse {
                path: path.to_owned(),
                line,
                message: format!(
                    "expected `user item1 item2 …` (at least 2 fields), found {}",
                    f.len()
                ),
            });
        }
        let user = parse_id(path, line, "user", f[0])?;
        for field in &f[1..] {
            // File order is time order, also for a user on several lines.
            let position = out.items.len() as i64;
            out.users.push(user);
            out.items.push(parse_id(path, line, "item", field)?);
            out.timestamps.as_mut().expect("set").push(position);
        }
    }
    if out.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(out)
}
