//! [`AuditStore`]: the audit trail, each entry written into its day's stream and its accounts'
//! streams (see [`super::schema::audit_pk`]) with one BatchWriteItem, read newest first with a
//! Query per stream.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::schema::{audit_from_item, audit_item, audit_pk, audit_sk_since, s, Item, AUDIT_SK_END};
use super::{build_err, store_err, DynamoStore};
use crate::domain::{AuditEntry, AuditPosition, AuditStream};
use crate::ports::{AuditStore, StoreResult};

#[async_trait]
impl AuditStore for DynamoStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let mut requests = Vec::new();
        for stream in entry.streams() {
            let put = PutRequest::builder().set_item(Some(audit_item(entry, &stream))).build().map_err(build_err)?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(requests).await
    }

    async fn audit_page(
        &self,
        stream: &AuditStream,
        before: Option<&AuditPosition>,
        since: i64,
        limit: usize,
        now: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let upper = before.map(AuditPosition::sort_key);
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        while found.len() < limit {
            // BETWEEN is inclusive: the entry at `before` itself is skipped below, hence one more.
            let want = (limit - found.len() + 1).min(1000) as i32;
            let out = self
                .client()
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(audit_pk(stream)))
                .expression_attribute_values(":lo", s(audit_sk_since(since)))
                .expression_attribute_values(":hi", s(upper.clone().unwrap_or_else(|| AUDIT_SK_END.to_owned())))
                .scan_index_forward(false)
                .limit(want)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_err)?;
            for item in out.items.unwrap_or_default() {
                let entry = audit_from_item(&item)?;
                let strictly_before = before.is_none_or(|b| &entry.position() < b);
                if strictly_before && entry.live(now) && found.len() < limit {
                    found.push(entry);
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(found)
    }
}
