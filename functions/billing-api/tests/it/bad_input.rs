//! Bad input on the app's routes: each gets a 4xx in the JSON error shape, never a 5xx, and
//! changes nothing in the table.

use lambda_http::http::Method;

use crate::Api;

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
}

fn case(name: &'static str, method: Method, path: &str, status: u16, code: &'static str) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        headers: Vec::new(),
        body: None,
        status,
        code,
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn json(self, body: &str) -> Self {
        self.raw(body.as_bytes().to_vec())
            .header("content-type", "application/json")
    }

    fn raw(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// A consumption with a good key: only the body is under test.
    fn consume(name: &'static str, body: &str, status: u16, code: &'static str) -> Self {
        case(name, Method::POST, "/v1/credits/consume", status, code)
            .header("idempotency-key", "k-1")
            .json(body)
    }
}

fn cases() -> Vec<Case> {
    let consume = |name, body, code| Case::consume(name, body, 400, code);
    let keyed = |name, key: String| {
        case(
            name,
            Method::POST,
            "/v1/credits/consume",
            400,
            "INVALID_IDEMPOTENCY_KEY",
        )
        .header("idempotency-key", key)
        .json(r#"{"amount":1}"#)
    };
    let payments = |name, query: &str| {
        case(
            name,
            Method::GET,
            &format!("/v1/payments?{query}"),
            400,
            "INVALID_QUERY",
        )
    };
    vec![
        consume("malformed JSON", "{\"amount\":", "INVALID_BODY"),
        consume("JSON that is not an object", "[1]", "INVALID_BODY"),
        consume("a string amount", r#"{"amount":"1"}"#, "INVALID_BODY"),
        consume("a fractional amount", r#"{"amount":1.5}"#, "INVALID_BODY"),
        consume("a negative amount", r#"{"amount":-1}"#, "INVALID_BODY"),
        consume(
            "an amount beyond u64",
            r#"{"amount":18446744073709551616}"#,
            "INVALID_BODY",
        ),
        consume(
            "a null amount beside an unknown field",
            r#"{"amount":null,"x":1}"#,
            "INVALID_BODY",
        ),
        consume(
            "an unknown field",
            r#"{"amount":1,"userId":"user_other"}"#,
            "INVALID_BODY",
        ),
        consume(
            "a duplicated field",
            r#"{"amount":1,"amount":2}"#,
            "INVALID_BODY",
        ),
        consume("trailing data", r#"{"amount":1} {}"#, "INVALID_BODY"),
        consume("a zero amount", r#"{"amount":0}"#, "INVALID_AMOUNT"),
        consume(
            "an amount over 1000",
            r#"{"amount":1001}"#,
            "INVALID_AMOUNT",
        ),
        consume(
            "a huge amount",
            r#"{"amount":18446744073709551615}"#,
            "INVALID_AMOUNT",
        ),
        consume("a boolean amount", r#"{"amount":true}"#, "INVALID_BODY"),
        case(
            "invalid UTF-8",
            Method::POST,
            "/v1/credits/consume",
            400,
            "INVALID_BODY",
        )
        .header("idempotency-key", "k-1")
        .header("content-type", "application/json")
        .raw(b"{\"amount\":1,\"\xff\":1}".to_vec()),
        case(
            "a body over 1 KiB",
            Method::POST,
            "/v1/credits/consume",
            413,
            "PAYLOAD_TOO_LARGE",
        )
        .header("idempotency-key", "k-1")
        .header("content-type", "application/json")
        .raw(format!(r#"{{"amount":1,"pad":"{}"}}"#, "x".repeat(2048)).into_bytes()),
        case(
            "a body in another media type",
            Method::POST,
            "/v1/credits/consume",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        )
        .header("idempotency-key", "k-1")
        .header("content-type", "text/plain")
        .raw(br#"{"amount":1}"#.to_vec()),
        case(
            "a body without a media type",
            Method::POST,
            "/v1/credits/consume",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        )
        .header("idempotency-key", "k-1")
        .raw(br#"{"amount":1}"#.to_vec()),
        case(
            "a form body",
            Method::POST,
            "/v1/credits/consume",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        )
        .header("idempotency-key", "k-1")
        .header("content-type", "application/x-www-form-urlencoded")
        .raw(b"amount=1".to_vec()),
        case(
            "no idempotency key",
            Method::POST,
            "/v1/credits/consume",
            400,
            "IDEMPOTENCY_KEY_REQUIRED",
        )
        .json(r#"{"amount":1}"#),
        case(
            "two idempotency keys",
            Method::POST,
            "/v1/credits/consume",
            400,
            "IDEMPOTENCY_KEY_REQUIRED",
        )
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .json(r#"{"amount":1}"#),
        keyed("an empty idempotency key", String::new()),
        keyed("an idempotency key over 255 characters", "k".repeat(256)),
        keyed("an idempotency key with a space", "a b".into()),
        keyed("an idempotency key with a tab", "a\tb".into()),
        keyed("a non-ASCII idempotency key", "키".into()),
        case(
            "cancel with an unknown field",
            Method::POST,
            "/v1/subscription/cancel",
            400,
            "INVALID_BODY",
        )
        .json(r#"{"now":true}"#),
        case(
            "cancel with malformed JSON",
            Method::POST,
            "/v1/subscription/cancel",
            400,
            "INVALID_BODY",
        )
        .json("{"),
        case(
            "resume with a body that is not JSON",
            Method::POST,
            "/v1/subscription/resume",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        )
        .raw(b"resume".to_vec()),
        case(
            "resume with an array",
            Method::POST,
            "/v1/subscription/resume",
            400,
            "INVALID_BODY",
        )
        .json("[]"),
        payments("a zero limit", "limit=0"),
        payments("a limit over 100", "limit=101"),
        payments("a negative limit", "limit=-1"),
        payments("a limit that is not a number", "limit=ten"),
        payments("a limit with a plus sign", "limit=%2B5"),
        payments("a limit given twice", "limit=5&limit=6"),
        payments("a cursor that is not ours", "cursor=abc"),
        payments("a cursor with one part", "cursor=12"),
        payments("a cursor with a negative part", "cursor=1.-1"),
        payments("a cursor beyond u32", "cursor=99999999999.1"),
        payments(
            "a query over 4 KiB",
            &format!("limit=1&pad={}", "a".repeat(5000)),
        ),
        case(
            "GET on consume",
            Method::GET,
            "/v1/credits/consume",
            405,
            "METHOD_NOT_ALLOWED",
        ),
        case(
            "DELETE on the subscription",
            Method::DELETE,
            "/v1/subscription",
            405,
            "METHOD_NOT_ALLOWED",
        ),
        case(
            "PUT on cancel",
            Method::PUT,
            "/v1/subscription/cancel",
            405,
            "METHOD_NOT_ALLOWED",
        ),
        case(
            "POST on payments",
            Method::POST,
            "/v1/payments",
            405,
            "METHOD_NOT_ALLOWED",
        ),
        case(
            "an unknown /v1 route",
            Method::GET,
            "/v1/subscriptions",
            404,
            "NOT_FOUND",
        ),
        case(
            "a trailing slash",
            Method::GET,
            "/v1/subscription/",
            404,
            "NOT_FOUND",
        ),
        case(
            "another user's id in the path",
            Method::GET,
            "/v1/subscription/user_other",
            404,
            "NOT_FOUND",
        ),
        case(
            "upper case",
            Method::POST,
            "/V1/CREDITS/CONSUME",
            404,
            "NOT_FOUND",
        ),
    ]
}

#[tokio::test]
async fn bad_input_on_the_app_routes_gets_a_json_4xx_and_changes_nothing() {
    let api = Api::new().await;
    api.subscribe("user_fuzzy").await;
    let token = api.token("user_fuzzy");
    let before = api.dump().await;
    let cases = cases();
    assert!(cases.len() >= 40, "{}", cases.len());

    for c in &cases {
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = api
            .send(
                c.method.clone(),
                &c.path,
                Some(&token),
                &headers,
                c.body.clone(),
            )
            .await;
        assert_eq!(answer.status, c.status, "{}: {}", c.name, answer.json);
        assert_eq!(answer.json["error"]["code"], c.code, "{}", c.name);
        assert!(
            answer.json["error"]["message"].is_string(),
            "{}: {}",
            c.name,
            answer.json
        );
    }

    assert_eq!(api.dump().await, before, "nothing changed");
    // The control: a good request is served and spends one credit.
    let ok = api.consume(&token, "k-1", r#"{"amount":1}"#).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
}

#[tokio::test]
async fn every_app_route_refuses_a_caller_without_a_valid_token_and_writes_nothing() {
    let api = Api::new().await;
    api.subscribe("user_target").await;
    let before = api.dump().await;
    let routes = [
        (Method::GET, "/v1/subscription"),
        (Method::POST, "/v1/subscription/cancel"),
        (Method::POST, "/v1/subscription/resume"),
        (Method::POST, "/v1/credits/consume"),
        (Method::GET, "/v1/payments"),
        (Method::POST, "/v1/checkout"),
    ];
    for (method, path) in routes {
        for bearer in [None, Some("not.a.jwt")] {
            let answer = api
                .send(
                    method.clone(),
                    path,
                    bearer,
                    &[
                        ("idempotency-key", "k"),
                        ("content-type", "application/json"),
                    ],
                    Some(br#"{"amount":1}"#.to_vec()),
                )
                .await;
            assert_eq!(answer.status, 401, "{method} {path} {bearer:?}");
            assert_eq!(answer.headers["www-authenticate"], "Bearer");
        }
    }
    assert_eq!(api.dump().await, before);
}
