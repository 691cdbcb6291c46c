use aws_sdk_dynamodb::error::SdkError;

/// What can go wrong talking to the table, as outcomes a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A conditional write lost: someone else claimed, changed or created the item first.
    #[error("the item changed or exists already (conditional check failed)")]
    ConditionFailed,
    /// A transaction was cancelled; `reasons` holds DynamoDB's code per item, in write order
    /// (`None` for items that were fine).
    #[error("the transaction was cancelled: {reasons:?}")]
    TransactionCanceled { reasons: Vec<Option<String>> },
    /// An item in the table does not parse into the domain (hand-edited or from a bug).
    #[error("item {key} is malformed: {problem}")]
    Corrupt { key: String, problem: String },
    /// A subscription's billing key could not be sealed before a write or opened after a
    /// read (the key service failed, or the stored value does not open).
    #[error("the billing key of item {key} could not be sealed or opened")]
    Sealed {
        key: String,
        #[source]
        source: crate::SealError,
    },
    /// DynamoDB failed or could not be reached.
    #[error("DynamoDB {operation} failed")]
    Service {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Whether the write lost a race (a condition, or a transaction conflict), as opposed to
    /// the table being unreachable or an item being malformed.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::ConditionFailed => true,
            Self::TransactionCanceled { reasons } => reasons
                .iter()
                .flatten()
                .all(|r| r == "ConditionalCheckFailed" || r == "TransactionConflict"),
            _ => false,
        }
    }

    pub(crate) fn service<E>(operation: &'static str, err: SdkError<E>) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::Service {
            operation,
            source: Box::new(err),
        }
    }

    pub(crate) fn corrupt(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Corrupt {
            key: key.into(),
            problem: problem.into(),
        }
    }
}
