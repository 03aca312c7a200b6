//! Exports of the archive for compliance archives and auditors, streamed: an `Export` reads the
//! journal a page at a time and turns each page into bytes, so a year of data never has to fit in
//! memory (EML holds back one day of messages at most, since it groups them by day). The CLI writes
//! the chunks to a file or stdout; the API streams the same bytes.
//!
//! - `jsonl`: one journal entry per line, the journal's own shape (hashes included, so the receiver
//!   can re-verify the chain).
//! - `eml`: RFC 5322 messages, one per conversation per UTC day, in an mbox stream (mboxrd `From `
//!   separators). Participants are addresses: the contact as `<digits>@<channel>.openline.invalid`,
//!   agents by e-mail, the business number like the contact. The body is the day's transcript
//!   (openline's own notices in the thread appear as `openline <system@openline.invalid>`);
//!   each media message adds a MIME attachment: the stored copy of its file (`media-<message
//!   id>.<ext>`, with its content type) when the export was given the blob store's directory
//!   ([`Export::with_blobs`]) and the file is stored; otherwise the media reference (id, MIME type,
//!   SHA-256, caption) as JSON, named `media-<message id>.json` and typed
//!   `application/vnd.openline.media-reference+json`.
//! - `csv`: metadata only, one row per entry (no message text).
//!
//! Filters: organization (required), user (entries naming them, and messages they wrote), contact
//! (their conversations, messages and consent), conversation, and a time range on the entry's time.

use crate::journal::JournalEntry;
use crate::sql::Conn;
use crate::{params, StoreError};
use mail_builder::headers::address::Address;
use mail_builder::headers::text::Text;
use mail_builder::MessageBuilder;
use openline_domain::utc::civil_from_days;
use std::collections::{BTreeMap, HashMap};

const DAY_MS: i64 = 86_400_000;
const PAGE: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Eml,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jsonl" => Some(Format::Jsonl),
            "eml" => Some(Format::Eml),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/x-ndjson",
            Format::Eml => "application/mbox",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Eml => "mbox",
            Format::Csv => "csv",
        }
    }
}

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub org_id: String,
    pub user_id: Option<String>,
    pub contact_id: Option<String>,
    pub conversation_id: Option<String>,
    /// Entries at or after this time (epoch milliseconds).
    pub since: Option<i64>,
    /// Entries before this time.
    pub until: Option<i64>,
}

/// The organization a filter's most specific subject belongs to (conversation, else contact, else
/// user), so an export by subject needs no organization; `None` if that subject does not exist.
pub fn subject_org(
    c: &mut dyn Conn,
    conversation_id: Option<&str>,
    contact_id: Option<&str>,
    user_id: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let (table, id) = match (conversation_id, contact_id, user_id) {
        (Some(id), ..) => ("conversations", id),
        (None, Some(id), _) => ("contacts", id),
        (None, None, Some(id)) => ("users", id),
        _ => return Ok(None),
    };
    c.query_opt(&format!("select org_id from {table} where id = ?"), params![id])?
        .map(|r| r.string(0))
        .transpose()
}

/// One archived message, as the EML transcript needs it.
#[derive(Debug, Clone)]
struct Msg {
    id: String,
    at: i64,
    direction: String,
    author_user_id: Option<String>,
    body: Option<String>,
    media: Option<serde_json::Value>,
    template: Option<serde_json::Value>,
    participants: Vec<String>,
}

#[derive(Debug, Clone)]
struct Thread {
    channel: String,
    contact_name: String,
    contact_address: String,
    business_name: String,
    business_address: String,
}

/// An export in progress: call `next_chunk` until it returns `None`.
pub struct Export {
    filter: Filter,
    format: Format,
    after: i64,
    finished: bool,
    /// Ids whose appearance in an entry selects it (user/contact/conversation filters); `None`
    /// when only the organization and time filter apply.
    tokens: Option<Vec<String>>,
    started: bool,
    /// EML: the UTC day being collected, and its messages by conversation.
    day: Option<i64>,
    pending: BTreeMap<String, Vec<Msg>>,
    threads: HashMap<String, Option<Thread>>,
    users: HashMap<String, Option<(String, String)>>,
    /// Entries read so far (for a progress bar).
    pub entries_read: u64,
    /// Items written: lines (jsonl), rows (csv) or e-mails (eml).
    pub items_written: u64,
    /// The blob store's directory: EML attaches stored media files from it.
    blob_root: Option<std::path::PathBuf>,
}

impl Export {
    pub fn new(filter: Filter, format: Format) -> Self {
        Self {
            filter,
            format,
            after: 0,
            finished: false,
            tokens: None,
            started: false,
            day: None,
            pending: BTreeMap::new(),
            threads: HashMap::new(),
            users: HashMap::new(),
            entries_read: 0,
            items_written: 0,
            blob_root: None,
        }
    }

    /// EML attaches each media message's stored file, read from the blob store at `root`.
    pub fn with_blobs(mut self, root: std::path::PathBuf) -> Self {
        self.blob_root = Some(root);
        self
    }

    /// A media message's stored file: (file name, content type, bytes), when the export has the blob
    /// store and the file is stored there.
    fn stored_copy(&self, c: &mut dyn Conn, m: &Msg) -> Result<Option<(String, String, Vec<u8>)>, StoreError> {
        let Some(root) = &self.blob_root else { return Ok(None) };
        // An outbound message names its uploaded file; an inbound one owns its file's row.
        let by_id = m.media.as_ref().and_then(|v| v["media_id"].as_str()).map(str::to_owned);
        let row = c.query_opt(
            "select content_type, stored_path from media
             where org_id = ? and state = 'stored' and (message_id = ? or id = ?)
             order by case when message_id = ? then 0 else 1 end limit 1",
            params![&self.filter.org_id, &m.id, by_id.as_deref().unwrap_or(""), &m.id],
        )?;
        let Some(row) = row else { return Ok(None) };
        let (content_type, path) = (
            row.opt_string(0)?.unwrap_or_else(|| "application/octet-stream".into()),
            row.opt_string(1)?.unwrap_or_default(),
        );
        // Only a reference the blob store could have written (`ab/cd/<64 hex>`) is opened.
        let valid = path.len() == 70
            && path.bytes().enumerate().all(|(i, b)| {
                if i == 2 || i == 5 {
                    b == b'/'
                } else {
                    b.is_ascii_hexdigit()
                }
            });
        if !valid {
            return Ok(None);
        }
        match std::fs::read(root.join(&path)) {
            Ok(bytes) => {
                let name = format!(
                    "media-{}{}",
                    m.id,
                    crate::media::file_extension(&content_type).unwrap_or(".bin")
                );
                Ok(Some((name, content_type, bytes)))
            }
            Err(e) => {
                tracing::warn!(message_id = %m.id, error = %e, "a stored media file could not be read for an export; its reference is attached instead");
                Ok(None)
            }
        }
    }

    /// How many entries the organization has in the time range (what a progress bar counts to).
    pub fn total(&self, c: &mut dyn Conn) -> Result<i64, StoreError> {
        c.query_one(
            "select count(*) from journal where org_id = ? and at >= ? and at < ?",
            params![
                &self.filter.org_id,
                self.filter.since.unwrap_or(i64::MIN),
                self.filter.until.unwrap_or(i64::MAX)
            ],
        )?
        .i64(0)
    }

    /// The next piece of the export, or `None` once everything was written. A chunk may be empty
    /// (a page whose entries were all filtered out).
    pub fn next_chunk(&mut self, c: &mut dyn Conn) -> Result<Option<Vec<u8>>, StoreError> {
        if self.finished {
            return Ok(None);
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            self.tokens = self.selection_tokens(c)?;
            if self.format == Format::Csv {
                out.extend_from_slice(CSV_HEADER.as_bytes());
            }
        }
        let page = crate::journal::page_in_range(
            c,
            &self.filter.org_id,
            self.after,
            self.filter.since,
            self.filter.until,
            PAGE,
        )?;
        let Some(last) = page.last() else {
            self.finished = true;
            if self.format == Format::Eml {
                self.flush_day(c, &mut out)?;
            }
            return Ok(Some(out));
        };
        self.after = last.seq;
        for e in &page {
            self.entries_read += 1;
            if !self.selected(e) {
                continue;
            }
            match self.format {
                Format::Jsonl => {
                    serde_json::to_writer(&mut out, e).map_err(|e| StoreError::Decode(e.to_string()))?;
                    out.push(b'\n');
                    self.items_written += 1;
                }
                Format::Csv => {
                    csv_row(&mut out, e)?;
                    self.items_written += 1;
                }
                Format::Eml => self.collect(c, e, &mut out)?,
            }
        }
        Ok(Some(out))
    }

    fn selected(&self, e: &JournalEntry) -> bool {
        let Some(tokens) = &self.tokens else {
            return true;
        };
        names_any(e.subject_id.as_deref(), &e.payload.to_string(), tokens)
    }

    fn selection_tokens(&self, c: &mut dyn Conn) -> Result<Option<Vec<String>>, StoreError> {
        let f = &self.filter;
        if f.user_id.is_none() && f.contact_id.is_none() && f.conversation_id.is_none() {
            return Ok(None);
        }
        let mut sets: Vec<Vec<String>> = Vec::new();
        if let Some(u) = &f.user_id {
            let mut ids = vec![u.clone()];
            for r in c.query(
                "select id from messages where org_id = ? and author_user_id = ?",
                params![&f.org_id, u],
            )? {
                ids.push(r.string(0)?);
            }
            sets.push(ids);
        }
        if let Some(ct) = &f.contact_id {
            sets.push(thread_ids(c, &f.org_id, "contact_id", ct, Some(ct))?);
        }
        if let Some(cv) = &f.conversation_id {
            sets.push(thread_ids(c, &f.org_id, "id", cv, None)?);
        }
        // Several filters narrow each other: keep the ids of the most specific one, which the
        // others contain when they agree (a conversation of the contact, messages of the user).
        sets.sort_by_key(|s| s.len());
        Ok(sets.into_iter().next())
    }

    fn collect(&mut self, c: &mut dyn Conn, e: &JournalEntry, out: &mut Vec<u8>) -> Result<(), StoreError> {
        // Messages in and out, and openline's own notices in the thread (system messages).
        if !matches!(e.kind.as_str(), "message.received" | "message.created" | "notice") {
            return Ok(());
        }
        let m = &e.payload["message"];
        let Some(conversation) = m["conversation_id"].as_str() else {
            return Ok(());
        };
        let day = e.at.div_euclid(DAY_MS);
        if self.day.is_some_and(|d| d != day) {
            self.flush_day(c, out)?;
        }
        self.day = Some(day);
        let s = |k: &str| m[k].as_str().map(str::to_owned);
        let nonnull = |k: &str| Some(m[k].clone()).filter(|v| !v.is_null());
        self.pending.entry(conversation.to_owned()).or_default().push(Msg {
            id: s("id").unwrap_or_default(),
            at: m["created_at"].as_i64().unwrap_or(e.at),
            direction: s("direction").unwrap_or_default(),
            author_user_id: s("author_user_id"),
            body: s("body"),
            media: nonnull("media"),
            template: nonnull("template"),
            participants: e.payload["participants"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        });
        Ok(())
    }

    fn flush_day(&mut self, c: &mut dyn Conn, out: &mut Vec<u8>) -> Result<(), StoreError> {
        let Some(day) = self.day.take() else {
            return Ok(());
        };
        for (conversation, msgs) in std::mem::take(&mut self.pending) {
            let eml = self.eml(c, &conversation, day, &msgs)?;
            write_mbox_message(out, msgs.first().map(|m| m.at).unwrap_or(day * DAY_MS), &eml);
            self.items_written += 1;
        }
        Ok(())
    }

    fn thread(&mut self, c: &mut dyn Conn, id: &str) -> Result<Option<Thread>, StoreError> {
        if let Some(t) = self.threads.get(id) {
            return Ok(t.clone());
        }
        let t = c
            .query_opt(
                "select cv.channel, ct.phone, ct.wa_user_id, ct.name, ct.whatsapp_name, s.phone_number, s.display_name
                 from conversations cv join contacts ct on ct.id = cv.contact_id join senders s on s.id = cv.sender_id
                 where cv.id = ? and cv.org_id = ?",
                params![id, &self.filter.org_id],
            )?
            .map(|r| -> Result<Thread, StoreError> {
                let channel = r.string(0)?;
                let phone = r.opt_string(1)?.or(r.opt_string(2)?).unwrap_or_default();
                let name = r.opt_string(3)?.or(r.opt_string(4)?).unwrap_or_else(|| phone.clone());
                let business = r.string(5)?;
                Ok(Thread {
                    contact_address: address_for(&phone, &channel),
                    contact_name: name,
                    business_address: address_for(&business, &channel),
                    business_name: format!("{} ({business})", r.string(6)?),
                    channel,
                })
            })
            .transpose()?;
        self.threads.insert(id.to_owned(), t.clone());
        Ok(t)
    }

    fn user(&mut self, c: &mut dyn Conn, id: &str) -> Result<Option<(String, String)>, StoreError> {
        if let Some(u) = self.users.get(id) {
            return Ok(u.clone());
        }
        let u = c
            .query_opt("select name, email from users where id = ?", params![id])?
            .map(|r| Ok::<_, StoreError>((r.string(0)?, r.string(1)?)))
            .transpose()?;
        self.users.insert(id.to_owned(), u.clone());
        Ok(u)
    }

    fn eml(&mut self, c: &mut dyn Conn, conversation: &str, day: i64, msgs: &[Msg]) -> Result<Vec<u8>, StoreError> {
        let thread = self.thread(c, conversation)?.unwrap_or(Thread {
            channel: "whatsapp".into(),
            contact_name: "unknown contact".into(),
            contact_address: "unknown@whatsapp.openline.invalid".into(),
            business_name: "business number".into(),
            business_address: "business@whatsapp.openline.invalid".into(),
        });
        let (y, mo, d) = civil_from_days(day);
        let date = format!("{y:04}-{mo:02}-{d:02}");
        // Everyone who took part that day: the contact, the business number, and each agent who
        // wrote or was a participant.
        let mut people: Vec<(String, String)> = vec![
            (thread.contact_name.clone(), thread.contact_address.clone()),
            (thread.business_name.clone(), thread.business_address.clone()),
        ];
        let mut transcript = String::new();
        let mut from: Option<(String, String)> = None;
        // Each media message's attachment: its stored copy, or its reference.
        let mut attachments: HashMap<String, (String, String, Vec<u8>)> = HashMap::new();
        for m in msgs {
            let Some(media) = &m.media else { continue };
            let attachment = match self.stored_copy(c, m)? {
                Some(copy) => copy,
                None => (
                    format!("media-{}.json", m.id),
                    "application/vnd.openline.media-reference+json".to_owned(),
                    serde_json::to_vec_pretty(media).map_err(|e| StoreError::Decode(e.to_string()))?,
                ),
            };
            attachments.insert(m.id.clone(), attachment);
        }
        for m in msgs {
            let author = match (m.direction.as_str(), &m.author_user_id) {
                ("in", _) => (thread.contact_name.clone(), thread.contact_address.clone()),
                ("system", _) => ("openline".to_owned(), "system@openline.invalid".to_owned()),
                (_, Some(u)) => self
                    .user(c, u)?
                    .unwrap_or_else(|| (u.clone(), format!("{u}@users.openline.invalid"))),
                _ => (thread.business_name.clone(), thread.business_address.clone()),
            };
            for p in &m.participants {
                if let Some(u) = self.user(c, p)? {
                    if !people.iter().any(|(_, a)| a == &u.1) {
                        people.push(u);
                    }
                }
            }
            if m.direction != "system" && !people.iter().any(|(_, a)| a == &author.1) {
                people.push(author.clone());
            }
            let attachment = attachments
                .get(&m.id)
                .map(|(name, content_type, _)| (name.as_str(), content_type.as_str()));
            transcript.push_str(&transcript_line(m, &author, attachment));
            // The e-mail is from whoever wrote first that day; everyone else is a recipient.
            if m.direction != "system" {
                from.get_or_insert(author);
            }
        }
        let from = from.unwrap_or_else(|| people[0].clone());
        let to: Vec<Address> = people
            .iter()
            .filter(|(_, a)| a != &from.1)
            .map(|(n, a)| Address::from((n.clone(), a.clone())))
            .collect();
        let mut builder = MessageBuilder::new()
            .message_id(format!("{conversation}.{date}@openline"))
            .from(Address::from((from.0.clone(), from.1.clone())))
            .to(Address::new_list(to))
            .subject(format!(
                "{} conversation with {} on {date}",
                channel_name(&thread.channel),
                thread.contact_name
            ))
            .date(msgs.first().map(|m| m.at / 1000).unwrap_or(day * 86_400))
            .header("X-Openline-Organization", Text::new(self.filter.org_id.clone()))
            .header("X-Openline-Conversation", Text::new(conversation.to_owned()))
            .header("X-Openline-Channel", Text::new(thread.channel.clone()))
            .header("X-Openline-Messages", Text::new(msgs.len().to_string()))
            .text_body(transcript);
        for m in msgs {
            if let Some((name, content_type, bytes)) = attachments.remove(&m.id) {
                builder = builder.attachment(content_type, name, bytes);
            }
        }
        builder.write_to_vec().map_err(|e| StoreError::Decode(e.to_string()))
    }
}

fn channel_name(channel: &str) -> &'static str {
    match channel {
        "sms" => "SMS",
        _ => "WhatsApp",
    }
}

/// `+447700900001` on WhatsApp becomes `447700900001@whatsapp.openline.invalid` (`.invalid` is
/// reserved, so these can never be real mailboxes).
fn address_for(number: &str, channel: &str) -> String {
    let local: String = number.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let local = if local.is_empty() { "unknown".to_owned() } else { local };
    format!("{local}@{channel}.openline.invalid")
}

/// `[2026-11-22 10:15:03 UTC] Ada (447700900001@whatsapp.openline.invalid): text`, continuation
/// lines indented; content not recorded, media and templates noted.
fn transcript_line(m: &Msg, author: &(String, String), attachment: Option<(&str, &str)>) -> String {
    let secs = m.at.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let mut text = match (&m.body, &m.template) {
        (Some(b), _) => b.clone(),
        (None, Some(t)) => format!(
            "[template {} {}]",
            t["name"].as_str().unwrap_or("?"),
            t["language"].as_str().unwrap_or("")
        ),
        (None, None) if m.media.is_some() => String::new(),
        (None, None) => "[content not recorded]".to_owned(),
    };
    if let Some(media) = &m.media {
        let note = match attachment {
            Some((name, content_type)) if !name.ends_with(".json") => format!("[attachment {name}: {content_type}]"),
            _ => format!(
                "[attachment media-{}.json: {}]",
                m.id,
                media["mime_type"]
                    .as_str()
                    .or(media["content_type"].as_str())
                    .unwrap_or("media")
            ),
        };
        text = if text.is_empty() {
            note
        } else {
            format!("{text}\n{note}")
        };
    }
    format!(
        "[{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC] {} <{}>: {}\n",
        s / 3600,
        (s % 3600) / 60,
        s % 60,
        author.0,
        author.1,
        text.replace('\n', "\n    ")
    )
}

/// Appends one message to an mbox stream (mboxrd: a `From ` line, `>`-quoting of body lines that
/// start with `>*From `, and a blank line after).
fn write_mbox_message(out: &mut Vec<u8>, at: i64, eml: &[u8]) {
    let secs = at.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let weekday = DAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
    let month = MONTHS[(mo.clamp(1, 12) - 1) as usize];
    out.extend_from_slice(
        format!(
            "From archive@openline {weekday} {month} {d:2} {:02}:{:02}:{:02} {y}\n",
            s / 3600,
            (s % 3600) / 60,
            s % 60
        )
        .as_bytes(),
    );
    for line in eml.split_inclusive(|b| *b == b'\n') {
        let unquoted = line.iter().skip_while(|b| **b == b'>').copied().collect::<Vec<u8>>();
        if unquoted.starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
    if !eml.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
}

const CSV_HEADER: &str = "seq,at,kind,subject_id,conversation_id,direction,author_user_id,status,actor,hash\n";

fn csv_row(out: &mut Vec<u8>, e: &JournalEntry) -> Result<(), StoreError> {
    let p = &e.payload;
    let m = &p["message"];
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_default();
    let actor = match &p["actor"] {
        serde_json::Value::Null => String::new(),
        a => match a["type"].as_str() {
            Some("user") => text(&a["email"]),
            other => other.unwrap_or_default().to_owned(),
        },
    };
    let status = if m.is_object() {
        text(&m["status"])
    } else {
        text(&p["status_now"])
    };
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.write_record([
        e.seq.to_string(),
        rfc3339(e.at),
        e.kind.clone(),
        e.subject_id.clone().unwrap_or_default(),
        text(&m["conversation_id"]),
        text(&m["direction"]),
        text(&m["author_user_id"]),
        status,
        actor,
        e.hash.clone(),
    ])
    .map_err(|e| StoreError::Decode(e.to_string()))?;
    let bytes = w.into_inner().map_err(|e| StoreError::Decode(e.to_string()))?;
    out.extend_from_slice(&bytes);
    Ok(())
}

/// `2026-11-22T10:15:03.120Z`.
pub fn rfc3339(at: i64) -> String {
    let secs = at.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        (s % 3600) / 60,
        s % 60,
        at.rem_euclid(1000)
    )
}

/// Whether a journal entry concerns one of `ids`: it is the entry's subject or appears anywhere in
/// its payload. The one rule by which both the export filters and legal holds (`holds::Coverage`)
/// decide which entries belong to a user, contact or conversation, so what a hold keeps and what an
/// export of the same subject holds cannot drift apart.
pub(crate) fn names_any(subject_id: Option<&str>, payload: &str, ids: &[String]) -> bool {
    ids.iter()
        .any(|id| subject_id == Some(id.as_str()) || payload.contains(id.as_str()))
}

/// A conversation's id and its messages' ids (by `column` = `id` for one conversation, or
/// `contact_id` for all of a contact's), plus `extra` (the contact id, naming its consent entries).
/// Shared with legal holds on a contact (`holds::coverage`).
pub(crate) fn thread_ids(
    c: &mut dyn Conn,
    org_id: &str,
    column: &str,
    value: &str,
    extra: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let mut ids: Vec<String> = extra.map(str::to_owned).into_iter().collect();
    for r in c.query(
        &format!(
            "select cv.id, m.id from conversations cv left join messages m on m.conversation_id = cv.id
             where cv.{column} = ? and cv.org_id = ?"
        ),
        params![value, org_id],
    )? {
        let conv = r.string(0)?;
        if !ids.contains(&conv) {
            ids.push(conv);
        }
        if let Some(m) = r.opt_string(1)? {
            ids.push(m);
        }
    }
    if ids.is_empty() {
        // Nothing matches: an id no entry can contain.
        ids.push(format!("\u{0}no-such-{value}"));
    }
    Ok(ids)
}
