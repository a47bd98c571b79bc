//! The `readings` layout (SENSORS.md §5.1): one CSV row per message → reading → field.

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::sensors::{Reading, datetime_ns, format_ns};

pub const HEADER: &str = "recv_time,topic,device_id,session_id,message_id,sensor,time,time_ns,time_src,field,value,value_text";

pub struct ReadingsWriter<W: Write> {
    out: W,
    /// One message's rows, written with one call: a 115-reading batch is 400-odd rows, and the
    /// csv crate's per-byte state machine was a fifth of `record`'s CPU (perf).
    buf: Vec<u8>,
}

impl<W: Write> ReadingsWriter<W> {
    /// `write_header: false` is for appending to a file that already has the header.
    pub fn new(mut out: W, write_header: bool) -> std::io::Result<Self> {
        if write_header {
            out.write_all(HEADER.as_bytes())?;
            out.write_all(b"\n")?;
            out.flush()?;
        }
        Ok(ReadingsWriter {
            out,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Writes every row of one message and flushes once (a crash loses at most this
    /// message). Rows keep the order given: message order, then reading order.
    /// Returns the number of rows.
    pub fn write_message(
        &mut self,
        recv_time: DateTime<Utc>,
        topic: &str,
        rows: &[Reading],
    ) -> std::io::Result<usize> {
        let recv_ns = datetime_ns(recv_time);
        let recv = format_ns(recv_ns).unwrap_or_default();
        let recv_ns_text = recv_ns.to_string();
        // Rows of one reading share a time: format it once per run of equal times, and
        // allocate nothing per row (a 100 Hz IMU stream is thousands of rows a second).
        let mut cached: Option<(i128, String, String)> = None;
        let buf = &mut self.buf;
        buf.clear();
        // The columns before `field` repeat for every field of a reading: quote them once.
        let mut head = Vec::with_capacity(256);
        let mut head_of: Option<&Reading> = None;
        for r in rows {
            let same = head_of.is_some_and(|h| {
                h.time == r.time
                    && h.sensor == r.sensor
                    && h.message_id == r.message_id
                    && h.session_id == r.session_id
                    && h.device_id == r.device_id
            });
            if !same {
                let (time, time_ns, src): (&str, &str, &str) = match &r.time {
                    Some(t) => {
                        let (_, formatted, digits) = match &mut cached {
                            Some(c) if c.0 == t.ns => c,
                            slot => slot.insert((
                                t.ns,
                                format_ns(t.ns).unwrap_or_default(),
                                t.ns.to_string(),
                            )),
                        };
                        // Sensor Logger's digits exactly as sent, else the computed ns.
                        (&*formatted, t.text.as_deref().unwrap_or(digits), "device")
                    }
                    None => (&recv, &recv_ns_text, "recv"),
                };
                head.clear();
                for field in [
                    recv.as_str(),
                    topic,
                    &r.device_id,
                    &r.session_id,
                    &r.message_id,
                    &r.sensor,
                    time,
                    time_ns,
                    src,
                ] {
                    csv_field(&mut head, field);
                    head.push(b',');
                }
                head_of = Some(r);
            }
            buf.extend_from_slice(&head);
            csv_field(buf, &r.field);
            buf.push(b',');
            csv_field(buf, &r.value);
            buf.push(b',');
            csv_field(buf, &r.value_text);
            buf.push(b'\n');
        }
        self.out.write_all(buf)?;
        self.out.flush()?;
        Ok(rows.len())
    }

    /// The underlying writer, to inspect a buffer in tests.
    #[cfg(test)]
    pub fn into_inner(self) -> std::io::Result<W> {
        Ok(self.out)
    }
}

/// RFC 4180, quoting only where needed: as the csv crate's `QuoteStyle::Necessary` does.
fn csv_field(buf: &mut Vec<u8>, field: &str) {
    let bytes = field.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        buf.extend_from_slice(bytes);
        return;
    }
    buf.push(b'"');
    for part in bytes.split_inclusive(|&b| b == b'"') {
        buf.extend_from_slice(part);
        if part.last() == Some(&b'"') {
            buf.push(b'"');
        }
    }
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    //! Every fixture through `decode(Auto)` and the writer. The expected CSV is written by
    //! hand from SENSORS.md §5.1/§6, not produced by the code under test.

    use super::*;
    use crate::sensors::{Decoder, Options, decode, thingspeak::redact_topic};

    #[test]
    fn fields_are_quoted_as_the_csv_crate_quotes_them() {
        let fields = [
            "",
            "plain",
            "a,b",
            "say \"hi\"",
            "\"",
            "line\nbreak",
            "cr\r",
            " lead",
            "tab\t",
            "ünï",
            "{\"x\":[1,2]}",
            "\"\"",
        ];
        let mut ours = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                ours.push(b',');
            }
            csv_field(&mut ours, f);
        }
        ours.push(b'\n');
        let mut theirs = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        theirs.write_record(fields).unwrap();
        let theirs = theirs.into_inner().unwrap();
        assert_eq!(String::from_utf8(ours), String::from_utf8(theirs));
    }

    /// Receipt time for every fixture: 5.5 s after the ThingFlow/ThingSpeak device times.
    fn recv() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-14T09:30:05.5Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Writes the given messages (topic, payload) as one CSV with a header.
    fn record(messages: &[(&str, &str)]) -> String {
        let mut w = ReadingsWriter::new(Vec::new(), true).unwrap();
        for (topic, payload) in messages {
            let rows = decode(
                Decoder::Auto,
                topic,
                payload.as_bytes(),
                recv(),
                &Options::default(),
            );
            let n = w
                .write_message(recv(), &redact_topic(topic), &rows)
                .unwrap();
            assert_eq!(n, rows.len());
        }
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    /// `topic<TAB>payload` lines, as in the istSOS and ThingSpeak fixtures.
    fn tab_lines(text: &str) -> Vec<(&str, &str)> {
        text.lines().map(|l| l.split_once('\t').unwrap()).collect()
    }

    fn check(got: &str, expected_rows: &str) {
        let expected = format!("{HEADER}\n{expected_rows}");
        for (i, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
            assert_eq!(g, e, "line {}", i + 1);
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn sensorlogger_ios_motion() {
        let got = record(&[(
            "sensor-logger",
            include_str!("../../tests/fixtures/sensorlogger-ios-motion.json"),
        )]);
        check(
            &got,
            "\
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,accelerometer,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,z,-0.0123,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,accelerometer,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,y,0.0457,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,accelerometer,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,x,0.0031,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,gyroscope,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,z,0.0012,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,gyroscope,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,y,-0.0087,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,gyroscope,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,x,0.0154,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,gravity,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,z,-9.7912,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,gravity,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,y,-0.5321,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,gravity,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,x,0.0712,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,orientation,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,yaw,-1.5708,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,orientation,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,qx,0.0,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,orientation,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,qz,-0.7071067811865476,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,orientation,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,roll,0.0,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,orientation,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,qw,0.7071067811865476,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,orientation,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,qy,0.0,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10,42,orientation,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,pitch,0.0,
",
        );
    }

    #[test]
    fn sensorlogger_android_mixed() {
        let got = record(&[(
            "sensor-logger",
            include_str!("../../tests/fixtures/sensorlogger-android-mixed.json"),
        )]);
        check(
            &got,
            "\
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,totalacceleration,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,z,9.7543,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,totalacceleration,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,y,0.2011,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,totalacceleration,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,x,-0.1532,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,totalacceleration,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,accuracy,3,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,magnetometer,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,z,-41.23,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,magnetometer,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,y,12.5,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,magnetometer,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,x,-3.1875,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,magnetometer,2025-03-14T09:30:00.130482200Z,1741944600130482200,device,accuracy,2,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,barometer,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,relativeAltitude,-0.1312,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,barometer,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,pressure,1012.381,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,barometer,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,accuracy,3,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,light,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,lux,342,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,light,2025-03-14T09:30:00.140482300Z,1741944600140482300,device,accuracy,3,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,microphone,2025-03-14T09:29:59.873000000Z,1741944599873000000,device,dBFS,-63,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,location,2025-03-14T09:30:00.125000000Z,1741944600125000000,device,altitude,214.2,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,location,2025-03-14T09:30:00.125000000Z,1741944600125000000,device,speedAccuracy,0.5,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,location,2025-03-14T09:30:00.125000000Z,1741944600125000000,device,bearingAccuracy,-1,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,location,2025-03-14T09:30:00.125000000Z,1741944600125000000,device,latitude,51.50722,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,location,2025-03-14T09:30:00.125000000Z,1741944600125000000,device,bearing,-1,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,location,2025-03-14T09:30:00.125000000Z,1741944600125000000,device,horizontalAccuracy,4.7,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,location,2025-03-14T09:30:00.125000000Z,1741944600125000000,device,verticalAccuracy,1.77,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,location,2025-03-14T09:30:00.125000000Z,1741944600125000000,device,longitude,-0.1275,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,location,2025-03-14T09:30:00.125000000Z,1741944600125000000,device,speed,0.0,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,battery,2025-03-14T09:30:00.200000000Z,1741944600200000000,device,batteryLevel,0.55,
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,battery,2025-03-14T09:30:00.200000000Z,1741944600200000000,device,batteryState,,unplugged
2025-03-14T09:30:05.500000000Z,sensor-logger,4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d,c0a80164-0000-4000-8000-00000000beef,7,battery,2025-03-14T09:30:00.200000000Z,1741944600200000000,device,lowPowerMode,,false
",
        );
    }

    #[test]
    fn sensorlogger_study() {
        let got = record(&[(
            "sensor-logger",
            include_str!("../../tests/fixtures/sensorlogger-study.json"),
        )]);
        check(
            &got,
            "\
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,annotation,2025-03-14T09:30:00.412000000Z,1741944600412000000,device,text,,start walking
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,annotation,2025-03-14T09:30:00.412000000Z,1741944600412000000,device,millisecond_press_duration,350,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,pedometer,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,steps,1203,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,network,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,type,,wifi
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,network,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,isConnected,,true
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,network,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,isInternetReachable,,true
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,network,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,isConnectionExpensive,,false
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,network,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,ssid,,lab-wifi
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,network,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,strength,78,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,network,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,frequency,5180,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,network,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,cellularGeneration,,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,bluetooth,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,id,,C4:7F:51:0A:2B:9E
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,bluetooth,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,rssi,-71,
2025-03-14T09:30:05.500000000Z,sensor-logger,9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d,a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60,3,bluetooth,2025-03-14T09:30:00.401337600Z,1741944600401337600,device,manufacturerData,,4c000215a1b2c3d4e5f60718293a4b5c6d7e8f900001000bc5
",
        );
    }

    #[test]
    fn thingflow_lines() {
        let text = include_str!("../../tests/fixtures/thingflow-lines.txt");
        let msgs: Vec<(&str, &str)> = text.lines().map(|l| ("sensor-data", l)).collect();
        // Lines 1–3: seconds since boot → recv time plus the raw `device_ts`.
        // Line 4: MicroPython epoch. Line 5: Unix seconds.
        check(
            &record(&msgs),
            "\
2025-03-14T09:30:05.500000000Z,sensor-data,,,,lux-1,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,value,284.1312,
2025-03-14T09:30:05.500000000Z,sensor-data,,,,lux-1,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,device_ts,624,
2025-03-14T09:30:05.500000000Z,sensor-data,,,,lux-1,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,value,288.2113,
2025-03-14T09:30:05.500000000Z,sensor-data,,,,lux-1,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,device_ts,626,
2025-03-14T09:30:05.500000000Z,sensor-data,,,,lux-1,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,value,291.0057,
2025-03-14T09:30:05.500000000Z,sensor-data,,,,lux-1,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,device_ts,628,
2025-03-14T09:30:05.500000000Z,sensor-data,,,,lux-2,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,value,12.5,
2025-03-14T09:30:05.500000000Z,sensor-data,,,,7,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,value,21.5,
",
        );
    }

    #[test]
    fn istsos_lines() {
        let text = include_str!("../../tests/fixtures/istsos-lines.txt");
        check(
            &record(&tab_lines(text)),
            "\
2025-03-14T09:30:05.500000000Z,istsos/T_LUGANO,T_LUGANO,,,T_LUGANO,2025-03-14T08:30:00.000000000Z,1741941000000000000,device,v1,12.4,
2025-03-14T09:30:05.500000000Z,istsos/T_LUGANO,T_LUGANO,,,T_LUGANO,2025-03-14T08:40:00.000000000Z,1741941600000000000,device,v1,12.6,
2025-03-14T09:30:05.500000000Z,istsos/METEO_LOCARNO,METEO_LOCARNO,,,METEO_LOCARNO,2025-03-14T08:30:00.000000000Z,1741941000000000000,device,v1,8.1,
2025-03-14T09:30:05.500000000Z,istsos/METEO_LOCARNO,METEO_LOCARNO,,,METEO_LOCARNO,2025-03-14T08:30:00.000000000Z,1741941000000000000,device,v2,74.2,
2025-03-14T09:30:05.500000000Z,istsos/METEO_LOCARNO,METEO_LOCARNO,,,METEO_LOCARNO,2025-03-14T08:30:00.000000000Z,1741941000000000000,device,v3,1013.4,
2025-03-14T09:30:05.500000000Z,foss4g2016/T_LUGANO,T_LUGANO,,,T_LUGANO,2025-03-14T09:00:00.250000000Z,1741942800250000000,device,v1,12.75,
",
        );
    }

    #[test]
    fn thingspeak_payloads() {
        let text = include_str!("../../tests/fixtures/thingspeak-payloads.txt");
        let got = record(&tab_lines(text));
        check(
            &got,
            "\
2025-03-14T09:30:05.500000000Z,channels/33301/publish,33301,,,,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,field1,100,
2025-03-14T09:30:05.500000000Z,channels/33301/publish,33301,,,,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,field2,50,
2025-03-14T09:30:05.500000000Z,channels/33301/publish,33301,,,,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,lat,30.61,
2025-03-14T09:30:05.500000000Z,channels/33301/publish,33301,,,,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,long,40.35,
2025-03-14T09:30:05.500000000Z,channels/33301/publish,33301,,,,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,status,,ok
2025-03-14T09:30:05.500000000Z,channels/33301/publish,33301,,,,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,field1,45,
2025-03-14T09:30:05.500000000Z,channels/33301/publish,33301,,,,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,field2,21.5,
2025-03-14T09:30:05.500000000Z,channels/33301/publish,33301,,,,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,status,,door open
2025-03-14T09:30:05.500000000Z,channels/33301/publish/fields/field1,33301,,,,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,field1,45,
2025-03-14T09:30:05.500000000Z,channels/33301/publish/fields/field2,33301,,,,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,field2,21.5,
2025-03-14T09:30:05.500000000Z,channels/33301/subscribe,33301,,,,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,entry_id,1234,
2025-03-14T09:30:05.500000000Z,channels/33301/subscribe,33301,,,,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,field1,45,
2025-03-14T09:30:05.500000000Z,channels/33301/subscribe,33301,,,,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,field2,21.5,
2025-03-14T09:30:05.500000000Z,channels/33301/subscribe,33301,,,,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,latitude,,
2025-03-14T09:30:05.500000000Z,channels/33301/subscribe,33301,,,,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,longitude,,
2025-03-14T09:30:05.500000000Z,channels/33301/subscribe,33301,,,,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,elevation,,
2025-03-14T09:30:05.500000000Z,channels/33301/subscribe,33301,,,,2025-03-14T09:30:05.000000000Z,1741944605000000000,device,status,,
2025-03-14T09:30:05.500000000Z,channels/33301/subscribe/fields/field1,33301,,,,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,field1,45,
2025-03-14T09:30:05.500000000Z,channels/33301/publish,33301,,,,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,field1,22.5,
",
        );
        // The dummy write key of line 7 appears nowhere in the recording.
        assert!(!got.contains("ABCDEFGHIJ012345"));
    }

    #[test]
    fn quoting_header_and_append() {
        use crate::sensors::Reading;
        // Append mode: no second header.
        let mut w = ReadingsWriter::new(Vec::new(), false).unwrap();
        let rows = [Reading {
            field: "payload".into(),
            value_text: "a,\"b\"\nc".into(),
            ..Reading::default()
        }];
        assert_eq!(w.write_message(recv(), "t/x", &rows).unwrap(), 1);
        assert_eq!(w.write_message(recv(), "t/x", &[]).unwrap(), 0);
        let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
        // RFC 4180 quoting, `\n` line ends, no CR anywhere.
        assert_eq!(
            out,
            "2025-03-14T09:30:05.500000000Z,t/x,,,,,2025-03-14T09:30:05.500000000Z,1741944605500000000,recv,payload,,\"a,\"\"b\"\"\nc\"\n"
        );
        // The header written by `new` is exactly HEADER.
        let w = ReadingsWriter::new(Vec::new(), true).unwrap();
        assert_eq!(w.into_inner().unwrap(), format!("{HEADER}\n").into_bytes());
    }

    #[test]
    fn rows_are_flushed_per_message() {
        use std::sync::{Arc, Mutex};
        /// Counts flushes and records what reached the sink.
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().0.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                self.0.lock().unwrap().1 += 1;
                Ok(())
            }
        }
        let sink = Sink::default();
        let mut w = ReadingsWriter::new(sink.clone(), false).unwrap();
        let payload = include_str!("../../tests/fixtures/sensorlogger-ios-motion.json");
        let rows = decode(
            Decoder::Auto,
            "sensor-logger",
            payload.as_bytes(),
            recv(),
            &Options::default(),
        );
        w.write_message(recv(), "sensor-logger", &rows).unwrap();
        let (bytes, flushes) = sink.0.lock().unwrap().clone();
        // Everything is in the sink (not in a buffer) after one call.
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), rows.len());
        assert_eq!(flushes, 1);
    }
}
