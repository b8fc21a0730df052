use super::*;
use serde_json::json;

fn removal(principal: &str, pk: &str, image: Value) -> Value {
    json!({
        "eventName": "REMOVE",
        "eventSource": "aws:dynamodb",
        "userIdentity": {"type": "Service", "principalId": principal},
        "dynamodb": {"Keys": {"pk": {"S": pk}}, "OldImage": image, "SequenceNumber": "42"}
    })
}

#[test]
fn every_type_of_dynamodb_json_is_read() {
    let value = json!({"M": {
        "s": {"S": "a"}, "n": {"N": "1.5"}, "b": {"B": "AAE="}, "t": {"BOOL": true}, "z": {"NULL": true},
        "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1"]}, "bs": {"BS": ["/w=="]}, "l": {"L": [{"S": "q"}]}
    }});
    let AttributeValue::M(map) = attribute(&value).unwrap() else {
        panic!("not a map")
    };
    assert_eq!(map["s"], AttributeValue::S("a".into()));
    assert_eq!(map["n"], AttributeValue::N("1.5".into()));
    assert_eq!(map["b"], AttributeValue::B(Blob::new(vec![0, 1])));
    assert_eq!(map["t"], AttributeValue::Bool(true));
    assert_eq!(map["z"], AttributeValue::Null(true));
    assert_eq!(map["ss"], AttributeValue::Ss(vec!["x".into(), "y".into()]));
    assert_eq!(map["ns"], AttributeValue::Ns(vec!["1".into()]));
    assert_eq!(map["bs"], AttributeValue::Bs(vec![Blob::new(vec![255])]));
    assert_eq!(map["l"], AttributeValue::L(vec![AttributeValue::S("q".into())]));
}

#[test]
fn a_bad_value_names_its_attribute_and_what_was_wrong() {
    let image = json!({"pk": {"S": "contact#a"}, "state": {"B": "not base64!"}});
    let StreamRecord::Unreadable { sequence, reason } = stream_record(&removal(TTL_PRINCIPAL, "contact#a", image))
    else {
        panic!("read")
    };
    assert_eq!(sequence, "42");
    let reason = reason.to_string();
    assert!(
        reason.contains("attribute `state`") && reason.contains("base64"),
        "{reason}"
    );
    for bad in [
        json!({"S": 1}),
        json!({"S": "a", "N": "1"}),
        json!({"X": "a"}),
        json!("a"),
    ] {
        assert!(attribute(&bad).is_err(), "{bad}");
    }
}

#[test]
fn only_the_ttls_deletions_of_contact_records_are_expiries() {
    let image = json!({"pk": {"S": "contact#a"}, "version": {"N": "3"}});
    let by_caller = removal("AROAEXAMPLE:someone", "contact#a", image.clone());
    assert!(matches!(stream_record(&by_caller), StreamRecord::Other));
    let other_item = removal(TTL_PRINCIPAL, "seen#a#20000", image.clone());
    assert!(matches!(stream_record(&other_item), StreamRecord::Other));
    let mut write = removal(TTL_PRINCIPAL, "contact#a", image.clone());
    write["eventName"] = json!("MODIFY");
    assert!(matches!(stream_record(&write), StreamRecord::Other));
    // A TTL deletion of a contact record is read (this image has no state: it is unreadable, not ignored).
    let expired = removal(TTL_PRINCIPAL, "contact#a", image);
    assert!(matches!(stream_record(&expired), StreamRecord::Unreadable { .. }));
    let mut no_image = removal(TTL_PRINCIPAL, "contact#a", json!(null));
    no_image["dynamodb"].as_object_mut().unwrap().remove("OldImage");
    let StreamRecord::Unreadable { reason, .. } = stream_record(&no_image) else {
        panic!("read")
    };
    assert!(reason.to_string().contains("OLD_IMAGE"), "{reason}");
}
