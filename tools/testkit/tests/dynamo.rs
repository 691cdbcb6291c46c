//! The test kit's DynamoDB side runs AWS's own DynamoDB Local with the table from template.yaml.

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ProjectionType, TimeToLiveStatus};
use testkit::dynamo::{self, TableDefinition};

#[test]
fn the_template_table_definition_has_the_ledger_keys_and_the_due_index() {
    // GIVEN the workspace's template.yaml (with !Ref / !Sub / !GetAtt elsewhere in it)
    let path = testkit::workspace_root().join("template.yaml");

    // WHEN the Table resource is read
    let table = TableDefinition::from_template(&path).unwrap();

    // THEN it is pay-per-request with pk/sk, the sparse `due` index and the sparse `settled`
    // index of paid ledger entries by day
    assert_eq!(table.billing_mode.as_deref(), Some("PAY_PER_REQUEST"));
    let keys: Vec<_> = table
        .key_schema
        .iter()
        .map(|k| (k.attribute_name.as_str(), k.key_type.as_str()))
        .collect();
    assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);
    let indexes: Vec<_> = table
        .global_secondary_indexes
        .iter()
        .map(|i| i.index_name.as_str())
        .collect();
    assert_eq!(indexes, ["due_keys", "settled", "card"]);
    assert_eq!(
        table
            .time_to_live_specification
            .as_ref()
            .map(|t| t.attribute_name.as_str()),
        Some("expires_at")
    );
}

#[test]
fn a_cloudformation_function_inside_the_table_keys_is_refused_rather_than_guessed() {
    let template = r#"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - AttributeName: !Ref KeyName
          AttributeType: S
      KeySchema:
        - AttributeName: pk
          KeyType: HASH
"#;

    let error = TableDefinition::from_template_str(template).unwrap_err();

    assert!(
        format!("{error:#}").contains("AttributeDefinitions"),
        "{error:#}"
    );
}

#[tokio::test]
async fn creating_the_table_from_the_template_yields_the_due_settled_and_card_indexes_with_their_keys()
 {
    // GIVEN a DynamoDB Local and a fresh table built from template.yaml
    let (client, table) = dynamo::fresh_table().await.unwrap();

    // WHEN it is described
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();

    // THEN the primary key and both indexes are exactly the template's
    let t = described.table().unwrap();
    let keys: Vec<_> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
        .collect();
    assert_eq!(
        keys,
        [
            ("pk".to_owned(), KeyType::Hash),
            ("sk".to_owned(), KeyType::Range)
        ]
    );
    let due = t
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some("due_keys"))
        .expect("the due index exists");
    let due_keys: Vec<_> = due
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
        .collect();
    assert_eq!(
        due_keys,
        [
            ("due_pk".to_owned(), KeyType::Hash),
            ("due_at".to_owned(), KeyType::Range)
        ]
    );
    assert_eq!(
        due.projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::KeysOnly)
    );
    let settled = t
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some("settled"))
        .expect("the settled index exists");
    let settled_keys: Vec<_> = settled
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
        .collect();
    assert_eq!(
        settled_keys,
        [
            ("settled_day".to_owned(), KeyType::Hash),
            ("sk".to_owned(), KeyType::Range)
        ]
    );
    assert_eq!(t.global_secondary_indexes().len(), 3);

    // AND TTL is on for expires_at
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn only_items_carrying_due_pk_appear_in_the_sparse_due_index() {
    let (client, table) = dynamo::fresh_table().await.unwrap();
    for (sk, due) in [("SUB#1", true), ("SUB#2", false)] {
        let mut put = client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("CUS#user_2abc".into()))
            .item("sk", AttributeValue::S(sk.into()));
        if due {
            put = put
                .item("due_pk", AttributeValue::S("DUE".into()))
                .item("due_at", AttributeValue::S("2026-12-01T00:00:00Z".into()));
        }
        put.send().await.unwrap();
    }

    let page = client
        .query()
        .table_name(&table)
        .index_name("due_keys")
        .key_condition_expression("due_pk = :p AND due_at <= :now")
        .expression_attribute_values(":p", AttributeValue::S("DUE".into()))
        .expression_attribute_values(":now", AttributeValue::S("2026-12-31T00:00:00Z".into()))
        .send()
        .await
        .unwrap();

    let sks: Vec<_> = page
        .items()
        .iter()
        .map(|i| i["sk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(sks, ["SUB#1"]);
}

#[tokio::test]
async fn a_condition_with_the_unescaped_reserved_word_status_is_rejected_like_aws_does() {
    // GIVEN the real DynamoDB Local (moto would accept this request)
    let (client, table) = dynamo::fresh_table().await.unwrap();

    // WHEN a conditional put names `status` without an #alias
    let result = client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("SUB#1".into()))
        .item("sk", AttributeValue::S("META".into()))
        .item("status", AttributeValue::S("active".into()))
        .condition_expression("attribute_not_exists(pk) OR status <> :active")
        .expression_attribute_values(":active", AttributeValue::S("active".into()))
        .send()
        .await;

    // THEN it is a validation error naming the reserved keyword, and the escaped form works
    let error = result.unwrap_err().into_service_error();
    assert_eq!(
        error.meta().code(),
        Some("ValidationException"),
        "{error:?}"
    );
    assert!(
        error
            .meta()
            .message()
            .unwrap_or_default()
            .contains("reserved keyword"),
        "{error:?}"
    );

    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("SUB#1".into()))
        .item("sk", AttributeValue::S("META".into()))
        .item("status", AttributeValue::S("active".into()))
        .condition_expression("attribute_not_exists(pk) OR #status <> :active")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":active", AttributeValue::S("active".into()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_condition_returns_the_old_item_when_asked() {
    let (client, table) = dynamo::fresh_table().await.unwrap();
    let put = || {
        client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("SUB#1".into()))
            .item("sk", AttributeValue::S("LEASE".into()))
            .item("owner", AttributeValue::S("run-a".into()))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
    };
    put().send().await.unwrap();

    let error = put().send().await.unwrap_err().into_service_error();

    match error {
        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
            assert_eq!(
                e.item()
                    .and_then(|i| i.get("owner"))
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str),
                Some("run-a")
            );
        }
        other => panic!("expected ConditionalCheckFailedException, got {other:?}"),
    }
}

/// The machine's own addresses other than loopback (`hostname -I`).
#[allow(clippy::expect_used)]
fn non_loopback_addresses() -> Vec<std::net::IpAddr> {
    let output = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .expect("run hostname -I");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .filter(|a| !a.is_loopback())
        .collect()
}

#[tokio::test]
async fn dynamodb_local_answers_on_loopback_and_is_not_reachable_on_the_machines_other_addresses() {
    // GIVEN a DynamoDB Local started by the test kit itself
    let server = dynamo::DynamoLocal::start().await.unwrap();
    let port: u16 = server
        .endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let addresses = non_loopback_addresses();
    assert!(
        !addresses.is_empty(),
        "this machine has no non-loopback address to check against"
    );

    // WHEN it is reached on loopback and on every other address of the machine
    let loopback = std::net::TcpStream::connect(("127.0.0.1", port));
    let reachable: Vec<_> = addresses
        .iter()
        .filter(|ip| {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::new(**ip, port),
                std::time::Duration::from_secs(2),
            )
            .is_ok()
        })
        .collect();

    // THEN only loopback answers
    assert!(loopback.is_ok(), "not reachable on 127.0.0.1:{port}");
    assert!(
        reachable.is_empty(),
        "reachable on {reachable:?} port {port}"
    );
}
