use super::*;

const LOCAL: LocalMedia =
    LocalMedia { address: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10)), port: 40_000, session_id: 7 };

/// SIPp's default offer, with its telephone-event on 101.
const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n";

#[test]
fn answer_keeps_the_offerers_payload_types_and_its_codec_preference() {
    let offer = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                 m=audio 5004 RTP/AVP 18 8 0 96\na=rtpmap:18 G729/8000\na=rtpmap:96 telephone-event/8000\n";
    let answer = answer(offer, &LOCAL, 1).unwrap();
    assert_eq!((answer.codec, answer.payload_type, answer.telephone_event), (Codec::Pcma, 8, Some(96)));
    assert_eq!(
        answer.text,
        "v=0\r\no=loket 7 1 IN IP4 192.0.2.10\r\ns=loket\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n\
         a=fmtp:96 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    assert_eq!(Sdp::parse(&answer.text).unwrap().audio_direction(), Some(Direction::SendRecv));
}

#[test]
fn dynamic_payload_types_name_g711_too() {
    let offer =
        "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 97 98\r\na=rtpmap:97 pcmu/8000\r\na=rtpmap:98 PCMA/8000\r\n";
    let answer = answer(offer, &LOCAL, 1).unwrap();
    assert_eq!((answer.codec, answer.payload_type, answer.telephone_event), (Codec::Pcmu, 97, None));
    assert!(answer.text.contains("m=audio 40000 RTP/AVP 97\r\na=rtpmap:97 PCMU/8000\r\n"), "{}", answer.text);
}

#[test]
fn sipp_offer_gets_pcmu_and_101() {
    let answer = answer(SIPP_OFFER, &LOCAL, 3).unwrap();
    assert_eq!((answer.codec, answer.payload_type, answer.telephone_event), (Codec::Pcmu, 0, Some(101)));
    assert!(answer.text.contains("o=loket 7 3 IN IP4"));
}

#[test]
fn no_common_codec_is_refused_and_other_streams_are_declined() {
    let opus = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n";
    assert_eq!(answer(opus, &LOCAL, 1), Err(SdpError::NoCommonCodec));
    let srtp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/SAVP 0\r\n";
    assert_eq!(answer(srtp, &LOCAL, 1), Err(SdpError::NoCommonCodec));
    let video_only = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 5006 RTP/AVP 96\r\n";
    assert_eq!(answer(video_only, &LOCAL, 1), Err(SdpError::NoCommonCodec));
    // Wide-band PCMU is not G.711.
    let wide = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 96\r\na=rtpmap:96 PCMU/16000\r\n";
    assert_eq!(answer(wide, &LOCAL, 1), Err(SdpError::NoCommonCodec));

    let two =
        "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 5006 RTP/AVP 96\r\nm=audio 5004 RTP/AVP 8\r\nm=audio 5008 RTP/AVP 0\r\n";
    let text = answer(two, &LOCAL, 1).unwrap().text;
    let media: Vec<&str> = text.lines().filter(|line| line.starts_with("m=")).collect();
    assert_eq!(media, ["m=video 0 RTP/AVP 96", "m=audio 40000 RTP/AVP 8", "m=audio 0 RTP/AVP 0"]);
}

/// RFC 3264 §6.1 and §8.4: hold and resume.
#[test]
fn direction_is_mirrored_for_hold_and_resume() {
    for (offered, answered) in [
        ("a=sendonly", "a=recvonly"),
        ("a=recvonly", "a=sendonly"),
        ("a=inactive", "a=inactive"),
        ("a=sendrecv", "a=sendrecv"),
        ("", "a=sendrecv"),
    ] {
        let offer = format!("{SIPP_OFFER}{offered}\r\n");
        let answer = answer(&offer, &LOCAL, 2).unwrap();
        assert!(answer.text.ends_with(&format!("{answered}\r\n")), "{offered}: {}", answer.text);
    }
    // A session-level direction applies to the streams; a media-level one wins over it.
    let session = SIPP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    assert_eq!(answer(&session, &LOCAL, 2).unwrap().offered, Direction::SendOnly);
    let both = format!("{session}a=sendrecv\r\n");
    assert_eq!(answer(&both, &LOCAL, 2).unwrap().offered, Direction::SendRecv);
    // RFC 2543 hold.
    let old_hold = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let answer = answer(&old_hold, &LOCAL, 2).unwrap();
    assert_eq!(answer.offered, Direction::Inactive);
    assert!(answer.offered.is_hold() && Direction::SendOnly.is_hold() && !Direction::RecvOnly.is_hold());
}

#[test]
fn offer_without_an_offer_in_the_invite() {
    let offer = offer(&LOCAL, 1, Direction::SendRecv);
    let answer = answer(&offer, &LOCAL, 2).unwrap();
    assert_eq!((answer.codec, answer.payload_type, answer.telephone_event), (Codec::Pcma, 8, Some(101)));
    let v6 = LocalMedia { address: "2001:db8::1".parse().unwrap(), ..LOCAL };
    assert!(super::offer(&v6, 1, Direction::SendOnly).contains("c=IN IP6 2001:db8::1\r\n"));
}

#[test]
fn bad_sdp_is_an_error_not_a_panic() {
    for bad in [
        "",
        "v=1\r\n",
        "v=0\r\nnonsense\r\n",
        "v=0\r\nc=IN IP4 not-an-address\r\n",
        "v=0\r\nc=IN\r\n",
        "v=0\r\nm=audio\r\n",
        "v=0\r\nm=audio 99999 RTP/AVP 0\r\n",
        "v=0\r\nm=audio 5004 RTP/AVP\r\n",
        "v=0\r\nxx=1\r\n",
    ] {
        assert!(matches!(answer(bad, &LOCAL, 1), Err(SdpError::Malformed(_))), "{bad:?}");
    }
    let too_many = format!("v=0\r\n{}", "m=audio 5004 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1));
    assert!(Sdp::parse(&too_many).is_err());
    // Odd but harmless attributes are ignored.
    let odd =
        "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\na=rtpmap:\r\na=rtpmap:x y\r\na=rtpmap:0 PCMU/x\r\n";
    assert_eq!(answer(odd, &LOCAL, 1).unwrap().codec, Codec::Pcmu);
    // Arbitrary bytes, cut at every position, never panic.
    for end in 0..SIPP_OFFER.len() {
        let _ = answer(&SIPP_OFFER[..end], &LOCAL, 1);
    }
}

#[test]
fn the_far_end_of_an_offer_and_of_an_answer() {
    let offer = "v=0\r\no=c 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 4000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n";
    let far = remote(offer).unwrap();
    assert_eq!(far, Remote { rtp: "192.0.2.1:4000".parse().unwrap(), codec: Codec::Pcma, telephone_event: Some(96) });
    let media_line =
        "v=0\r\no=c 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\n";
    let far = remote(media_line).unwrap();
    assert_eq!((far.rtp, far.codec, far.telephone_event), ("192.0.2.9:5000".parse().unwrap(), Codec::Pcmu, None));
    assert_eq!(
        remote("v=0\r\ns=-\r\nm=audio 5000 RTP/AVP 0\r\n"),
        Err(SdpError::Malformed("no c= line for the audio"))
    );
    assert_eq!(remote("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 18\r\n"), Err(SdpError::NoCommonCodec));
}
