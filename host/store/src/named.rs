//! Named records: a JSON table keyed by id plus a unique name → id index, with
//! create / rename / delete and an audit entry in the same transaction. Tasks,
//! schedules, triggers and webhooks are stored through it.

use super::StoreError;
use super::audit;
use super::cache::{ReadCache, Shelf};
use super::tables::{Json, Paged, get_json, put_json};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a named record says of itself: its id, its name, and when it changed.
pub trait NamedRecord: Serialize + DeserializeOwned + Clone + Send + 'static {
    /// Its id.
    fn id(&self) -> &str;
    /// Its unique name.
    fn name(&self) -> &str;
    /// Mark it changed at `now` (RFC 3339).
    fn stamp(&mut self, now: String);
}

/// [`NamedRecord`] for records with `id`, `updated_at` and `spec.name`.
macro_rules! named_record {
    ($($record:ty),* $(,)?) => {
        $(impl $crate::named::NamedRecord for $record {
            fn id(&self) -> &str {
                &self.id
            }

            fn name(&self) -> &str {
                &self.spec.name
            }

            fn stamp(&mut self, now: String) {
                self.updated_at = now;
            }
        })*
    };
}

named_record!(
    crate::tasks::TaskRecord,
    crate::triggers::TriggerRecord,
    crate::webhooks::WebhookRecord,
    crate::schedules::ScheduleRecord,
);

/// A noun stored as named records of type `T`.
pub struct Named<T: 'static> {
    /// id → record.
    pub records: TableDefinition<'static, &'static str, Json<'static, T>>,
    /// name → id.
    pub names: TableDefinition<'static, &'static str, &'static str>,
    /// The noun, for messages and audit entries ("trigger").
    pub noun: &'static str,
    /// Kept in the commit of every write of a record, after it ([`no_hook`] for most
    /// nouns; a schedule's due-time entry).
    pub on_put: Hook<T>,
    /// Kept in the commit of every delete of a record, after it.
    pub on_delete: Hook<T>,
    /// The shelf of this node's copies of the noun's records, for nouns every run
    /// reads (tasks; [`crate::cache`]): reads by id or name go through it and every
    /// change drops it once committed. `None` for the others.
    pub(crate) copies: Option<fn(&ReadCache) -> &Shelf<T>>,
}

impl<T: 'static> Clone for Named<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: 'static> Copy for Named<T> {}

impl<T: NamedRecord> Named<T> {
    /// The id `key` (an id or a name) stands for.
    pub fn resolve(
        &self,
        names: &impl ReadableTable<&'static str, &'static str>,
        key: &str,
    ) -> Result<String, StoreError> {
        Ok(names
            .get(key)?
            .map(|v| v.value().to_string())
            .unwrap_or_else(|| key.to_string()))
    }

    /// Read one record by id or name.
    pub fn get(&self, txn: &redb::ReadTransaction, key: &str) -> Result<Option<T>, StoreError> {
        let (Ok(records), Ok(names)) = (txn.open_table(self.records), txn.open_table(self.names)) else {
            return Ok(None);
        };
        get_json(&records, &self.resolve(&names, key)?)
    }

    /// Up to `limit` records with ids after `after`, oldest first, and the cursor for more.
    pub fn page(
        &self,
        txn: &redb::ReadTransaction,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Paged<T>, StoreError> {
        let Ok(records) = txn.open_table(self.records) else {
            return Ok((Vec::new(), None));
        };
        use redb::TableHandle;
        super::tables::page_json(&records, self.records.name(), after, limit)
    }

    /// Load one record by id or name inside a write, or fail with not found.
    pub fn load(&self, txn: &WriteTransaction, key: &str) -> Result<(String, T), StoreError> {
        let id = self.resolve(&txn.open_table(self.names)?, key)?;
        let record = get_json(&txn.open_table(self.records)?, &id)?
            .ok_or_else(|| StoreError::NotFound(format!("{} {key:?} not found", self.noun)))?;
        Ok((id, record))
    }

    /// Create `record`; its name must be free.
    pub fn create(&self, txn: &WriteTransaction, record: &T, actor: &str) -> Result<(), StoreError> {
        let id = record.id();
        self.claim(txn, record.name(), id)?;
        put_json(&mut txn.open_table(self.records)?, id, record)?;
        (self.on_put)(txn, record)?;
        audit::created(txn, actor, self.noun, id, record)
    }

    /// Point `name` at `id`; the name must be free.
    fn claim(&self, txn: &WriteTransaction, name: &str, id: &str) -> Result<(), StoreError> {
        let mut names = txn.open_table(self.names)?;
        if names.get(name)?.is_some() {
            return Err(StoreError::Conflict(format!(
                "{} {name:?} already exists",
                self.noun
            )));
        }
        names.insert(name, id)?;
        Ok(())
    }

    /// Change the record `key` names: `change` edits a copy (and may check it against
    /// the transaction), the copy is stamped `now` and replaces the record, its name
    /// moving if it changed. Returns (before, after).
    pub fn update(
        &self,
        txn: &WriteTransaction,
        key: &str,
        now: String,
        actor: &str,
        change: impl FnOnce(&WriteTransaction, &mut T) -> Result<(), StoreError>,
    ) -> Result<(T, T), StoreError> {
        let (id, before) = self.load(txn, key)?;
        let mut after = before.clone();
        change(txn, &mut after)?;
        after.stamp(now);
        if after.name() != before.name() {
            self.claim(txn, after.name(), &id)?;
            txn.open_table(self.names)?.remove(before.name())?;
        }
        put_json(&mut txn.open_table(self.records)?, &id, &after)?;
        (self.on_put)(txn, &after)?;
        audit::updated(txn, actor, self.noun, &id, &before, &after)?;
        Ok((before, after))
    }

    /// Delete the record `key` names, after `before` (which tidies what refers to it);
    /// returns it.
    pub fn remove(
        &self,
        txn: &WriteTransaction,
        key: &str,
        actor: &str,
        before: Hook<T>,
    ) -> Result<T, StoreError> {
        let (_, record) = self.load(txn, key)?;
        before(txn, &record)?;
        self.delete(txn, &record, actor)?;
        Ok(record)
    }

    /// Delete `record` and its name.
    pub fn delete(&self, txn: &WriteTransaction, record: &T, actor: &str) -> Result<(), StoreError> {
        let id = record.id();
        txn.open_table(self.names)?.remove(record.name())?;
        txn.open_table(self.records)?.remove(id)?;
        (self.on_delete)(txn, record)?;
        audit::deleted(txn, actor, self.noun, id, record)
    }
}

/// What a named noun's store does before a create or a delete, in its commit: checks
/// that must pass, or other tables to tidy (nothing for most nouns).
pub type Hook<T> = fn(&WriteTransaction, &T) -> Result<(), StoreError>;

/// The [`Hook`] of a noun that needs none.
pub fn no_hook<T>(_: &WriteTransaction, _: &T) -> Result<(), StoreError> {
    Ok(())
}

/// One commit each: what every named noun's store does alike.
impl crate::Store {
    /// One record by id or name, through the noun's shelf of copies if it has one.
    pub(crate) fn get_named<T: NamedRecord>(
        &self,
        named: Named<T>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        match named.copies {
            Some(shelf) => shelf(&self.cache).read(key, || named.get(&self.read()?, key)),
            None => named.get(&self.read()?, key),
        }
    }

    /// Apply a change of the noun's records; its copies, if it has any, are dropped
    /// once it committed ([`crate::Store::write_dropping`]).
    async fn write_named<T: NamedRecord, R: Send + 'static>(
        &self,
        named: Named<T>,
        mutation: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        match named.copies {
            Some(shelf) => {
                self.write_dropping(move |copies| shelf(copies).drop_all(), mutation)
                    .await
            }
            None => self.write(mutation).await,
        }
    }

    /// Create `record` (its name must be free) once `check` passes.
    pub(crate) async fn insert_named<T: NamedRecord>(
        &self,
        named: Named<T>,
        record: T,
        actor: &str,
        check: Hook<T>,
    ) -> Result<T, StoreError> {
        let actor = actor.to_string();
        self.write_named(named, move |txn| {
            check(txn, &record)?;
            named.create(txn, &record, &actor)?;
            Ok(record)
        })
        .await
    }

    /// Change the record `key` names (see [`Named::update`]).
    pub(crate) async fn update_named<T: NamedRecord>(
        &self,
        named: Named<T>,
        key: &str,
        now: String,
        actor: &str,
        change: impl FnOnce(&WriteTransaction, &mut T) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(T, T), StoreError> {
        let (key, actor) = (key.to_string(), actor.to_string());
        self.write_named(named, move |txn| named.update(txn, &key, now, &actor, change))
            .await
    }

    /// Delete the record `key` names (see [`Named::remove`]); returns it.
    pub(crate) async fn delete_named<T: NamedRecord>(
        &self,
        named: Named<T>,
        key: &str,
        actor: &str,
        before: Hook<T>,
    ) -> Result<T, StoreError> {
        let (key, actor) = (key.to_string(), actor.to_string());
        self.write_named(named, move |txn| named.remove(txn, &key, &actor, before))
            .await
    }
}

/// Declare a named noun's store trait and implement it for [`crate::Store`] through its
/// [`Named`] tables: the methods every named noun has (create, one by id or name, a
/// page, update, and unless its delete takes more, delete), each with its doc, then the
/// noun's own methods in `also { }`, each written once (docs, signature, body).
///
/// `fn insert_x = hook;` and `fn delete_x = hook;` run a [`Hook`] in the commit;
/// `fn update_x(arg: Arg) = change;` applies `change` (see [`Named::update`]);
/// `fn update_x(spec: Spec);` replaces the record's spec.
macro_rules! named_store {
    (
        $(#[$doc:meta])*
        pub trait $store:ident: Named<$record:ident> = $named:ident {
            $(#[$insert_doc:meta])*
            fn $insert:ident $(= $check:expr)?;
            $(#[$get_doc:meta])*
            fn $get:ident;
            $(#[$page_doc:meta])*
            fn $page:ident;
            $(#[$update_doc:meta])*
            fn $update:ident($arg:ident: $arg_type:ty) $(= $change:expr)?;
            $(
                $(#[$delete_doc:meta])*
                fn $delete:ident $(= $before:expr)?;
            )?
        }
        $(also { $($own:tt)* })?
    ) => {
        $crate::named::named_store! {
            @own { $(#[$doc])* $store; } [
                [$(#[$insert_doc])*]
                [async fn $insert(&self, record: $record, actor: &str) -> Result<$record, StoreError>]
                {
                    let check: $crate::named::Hook<$record> =
                        $crate::named::named_store!(@hook $($check)?);
                    self.insert_named($named, record, actor, check).await
                }
                [$(#[$get_doc])*]
                [fn $get(&self, key: &str) -> Result<Option<$record>, StoreError>]
                {
                    self.get_named($named, key)
                }
                [$(#[$page_doc])*]
                [fn $page(&self, after: Option<&str>, limit: usize) -> Result<Paged<$record>, StoreError>]
                {
                    $named.page(&self.read()?, after, limit)
                }
                [$(#[$update_doc])*]
                [async fn $update(
                    &self,
                    key: &str,
                    $arg: $arg_type,
                    now: String,
                    actor: &str,
                ) -> Result<($record, $record), StoreError>]
                {
                    self.update_named(
                        $named,
                        key,
                        now,
                        actor,
                        $crate::named::named_store!(@change $arg $($change)?),
                    )
                    .await
                }
                $(
                    [$(#[$delete_doc])*]
                    [async fn $delete(&self, key: &str, actor: &str) -> Result<$record, StoreError>]
                    {
                        let before: $crate::named::Hook<$record> =
                            $crate::named::named_store!(@hook $($before)?);
                        self.delete_named($named, key, actor, before).await
                    }
                )?
            ]
            $($($own)*)?
        }
    };
    // Take the noun's own methods one at a time into the `[docs] [signature] body` form.
    (
        @own { $($head:tt)* } [$($done:tt)*]
        $(#[$doc:meta])*
        async fn $name:ident($($params:tt)*) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        $crate::named::named_store! {
            @own { $($head)* } [$($done)* [$(#[$doc])*] [async fn $name($($params)*) -> $ret] $body]
            $($rest)*
        }
    };
    (
        @own { $($head:tt)* } [$($done:tt)*]
        $(#[$doc:meta])*
        fn $name:ident($($params:tt)*) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        $crate::named::named_store! {
            @own { $($head)* } [$($done)* [$(#[$doc])*] [fn $name($($params)*) -> $ret] $body]
            $($rest)*
        }
    };
    // The trait, each method declared by its signature, and its implementation, each
    // method by the same signature and its body.
    (
        @own { $(#[$doc:meta])* $store:ident; }
        [$([$(#[$method_doc:meta])*] [$($signature:tt)*] $body:block)*]
    ) => {
        $(#[$doc])*
        #[async_trait::async_trait]
        pub trait $store: Send + Sync {
            $(
                $(#[$method_doc])*
                $($signature)*;
            )*
        }

        #[async_trait::async_trait]
        impl $store for $crate::Store {
            $($($signature)* $body)*
        }
    };
    (@change $spec:ident) => {
        |_, record| {
            record.spec = $spec;
            Ok(())
        }
    };
    (@change $spec:ident $change:expr) => {
        $change
    };
    (@hook) => {
        $crate::named::no_hook
    };
    (@hook $hook:expr) => {
        $hook
    };
}
pub(crate) use named_store;
