import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraExplain
import TesseraInference
import TesseraTraining

/// `report.html` of a pipeline run, self-contained (no network): training curves as inline SVG, metrics tables,
/// galleries of segmentation and Grad-CAM overlays (embedded PNG/JPEG), the resolved configuration, versions
/// and timings.
public struct RunReport {
    public let run: PipelineRun
    public let summary: PipelineRun.Summary
    /// Images per gallery.
    public var galleryLimit = 8

    public init(run: PipelineRun, summary: PipelineRun.Summary) {
        self.run = run
        self.summary = summary
    }

    public func write(to url: URL) throws { try AtomicFile.write(Data(html().utf8), to: url) }

    public func html() -> String {
        var body = "<h1>Tessera run: \(escape(run.config.name))</h1>\n"
        body +=
            "<p>Run folder <code>\(escape(run.runDirectory.path))</code>, written \(ISO8601DateFormatter().string(from: Date())).</p>\n"
        body += timings()
        body += training()
        if let s = summary.segment {
            let counts = BatchCounts(s.records)
            body +=
                "<h2>Segmentation</h2>\n"
                + table(
                    ["images", "done", "existing", "failed", "s per image"],
                    [
                        [
                            String(counts.images), String(counts.done), String(counts.existing), String(counts.failed),
                            format(counts.secondsPerImage)
                        ]
                    ])
            if let m = s.metrics { body += metricsTable(m) }
            body += gallery("Segmentation overlays", folder: run.segmentDirectory.appendingPathComponent("overlay"))
        }
        if let e = summary.explain {
            body +=
                "<h2>Explanations</h2>\n"
                + table(
                    ["image", "class", "score", "peak", "share on truth band"],
                    e.records.prefix(50).map { r in
                        [
                            escape(r.path), escape(r.className ?? r.error ?? ""), format(r.score),
                            r.peakX.map { String(format: "(%.0f, %.0f)", $0, r.peakY ?? 0) } ?? "",
                            format(r.massInTruth)
                        ]
                    })
            if let m = metricsNames(e.records) {
                let scores = e.meanScores(), random = e.meanScores(random: true)
                body +=
                    "<h3>Faithfulness (mean over images)</h3>\n"
                    + table(
                        ["map"] + m,
                        [["method"] + m.map { format(scores[$0]) }, ["random map"] + m.map { format(random[$0]) }])
            }
            body += gallery("Grad-CAM overlays", folder: run.explainDirectory.appendingPathComponent("overlay"))
        }
        if let e = summary.evaluation { body += classification(e) }
        if let records = summary.classify {
            let counts = BatchCounts(records)
            body +=
                "<h2>Classified images</h2>\n"
                + table(
                    ["image", "class", "probability"],
                    records.prefix(50).map { r in
                        [escape(r.path), escape(r.top.first?.class ?? r.error ?? ""), format(r.top.first?.probability)]
                    })
                + "<p>\(counts.done + counts.existing) of \(counts.images) images classified, \(counts.failed) failed.</p>\n"
        }
        if let c = summary.comparison { body += comparison(c) }
        let config =
            (try? JSONSerialization.data(withJSONObject: run.config.resolved, options: [.prettyPrinted, .sortedKeys]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        body += "<h2>Configuration</h2>\n<pre>\(escape(config))</pre>\n"
        if let training = try? String(contentsOf: TrainingRunFolder(run.trainDirectory).config, encoding: .utf8) {
            body +=
                "<details><summary>Training configuration as resolved by the trainer</summary><pre>\(escape(training))</pre></details>\n"
        }
        body +=
            "<h2>Versions</h2>\n"
            + table(
                ["component", "version"],
                [
                    ["tessera", TesseraVersion.current], ["libpng", ImageCodec.libraryVersions.png],
                    ["libjpeg", ImageCodec.libraryVersions.jpeg], ["libtiff", TIFFFile.libraryVersion],
                    ["host", escape(ProcessInfo.processInfo.operatingSystemVersionString)],
                    ["threads", String(ProcessInfo.processInfo.activeProcessorCount)]
                ])
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Tessera run \(escape(run.config.name))</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
            table { border-collapse: collapse; margin: 0.5em 0 1.5em; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
            th { background: #f0f0f0; } td:first-child { text-align: left; } pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
            .gallery { display: flex; flex-wrap: wrap; gap: 8px; } .gallery figure { margin: 0; } .gallery img { width: 240px; image-rendering: pixelated; }
            figcaption { font-size: 0.8em; } svg { background: #fff; border: 1px solid #ddd; margin-right: 1em; }
            </style></head><body>
            \(body)</body></html>
            """
    }

    /// The faithfulness metrics the records carry, in declaration order (nil: none).
    func metricsNames(_ records: [ExplainRecord]) -> [String]? {
        let present = Set(records.flatMap { ($0.faithfulness ?? [:]).keys })
        let names = FaithfulnessMetric.allCases.map(\.rawValue).filter(present.contains)
        return names.isEmpty ? nil : names
    }

    /// The explain stage's table of methods by faithfulness and one gallery of overlays per method.
    func comparison(_ c: ExplainComparison.Summary) -> String {
        let names = FaithfulnessMetric.allCases.filter { m in c.rows.contains { $0.scores[m.rawValue] != nil } }
        var out = "<h2>Explanations compared</h2>\n<p>Mean over images; "
        out += names.map { "\($0.rawValue): \($0.higherIsBetter ? "higher" : "lower") is better" }
            .joined(separator: ", ")
        out += ". The random map is the baseline a method must beat.</p>\n"
        out += table(
            ["method", "images"] + names.map(\.rawValue) + ["s per image"],
            c.rows.map { r in
                [escape(r.method), String(r.images)] + names.map { format(r.scores[$0.rawValue]) }
                    + [format(r.secondsPerImage)]
            })
        for (method, _) in c.runs {
            out += gallery(
                "\(method.rawValue) overlays",
                folder: run.explainDirectory.appendingPathComponent(method.rawValue + "/overlay"))
        }
        return out
    }

    func timings() -> String {
        guard !summary.stageSeconds.isEmpty else { return "" }
        return "<h2>Timings</h2>\n"
            + table(["stage", "seconds"], summary.stageSeconds.map { [$0.0, String(format: "%.1f", $0.1)] })
    }

    func training() -> String {
        let rows = MetricsLog(directory: run.trainDirectory).rows()
        guard !rows.isEmpty else { return "" }
        var out = "<h2>Training</h2>\n<div>"
        out += chart(
            "loss", rows: rows, keys: ["train_loss", "val_loss"].filter { k in rows.contains { $0[k] != nil } })
        out += chart(
            "validation metrics", rows: rows,
            keys: ["pixel_accuracy", "mean_iou", "mean_dice", "accuracy", "mean_f1"].filter { k in
                rows.contains { $0[k] != nil }
            })
        out += "</div>\n"
        if let last = rows.last {
            out += "<h3>Last validation (step \(Int(last["step"] ?? 0)))</h3>\n" + metricsTable(last)
        }
        return out
    }

    /// A line chart of `keys` against `step` as inline SVG.
    func chart(_ title: String, rows: [[String: Double]], keys: [String]) -> String {
        guard !keys.isEmpty else { return "" }
        let w = 480.0, h = 260.0, left = 50.0, bottom = 30.0, top = 24.0, right = 110.0
        let steps = rows.compactMap { $0["step"] }
        let values = rows.flatMap { r in keys.compactMap { r[$0] } }.filter(\.isFinite)
        guard let x0 = steps.min(), let x1 = steps.max(), var y0 = values.min(), var y1 = values.max() else {
            return ""
        }
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        func px(_ x: Double) -> Double { left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (w - left - right) }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom) }
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"]
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\">"
        svg += "<text x=\"\(left)\" y=\"16\" font-size=\"13\">\(escape(title))</text>"
        svg += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"#888\"/>"
        svg += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"#888\"/>"
        for t in 0...4 {
            let y = y0 + (y1 - y0) * Double(t) / 4
            svg += String(
                format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.3g</text>", left - 4,
                py(y) + 3, y)
        }
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">step %d</text>", left, h - 8, Int(x0))
        svg += String(
            format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%d</text>", w - right, h - 8,
            Int(x1))
        for (i, key) in keys.enumerated() {
            let points = rows.compactMap { r -> String? in
                guard let s = r["step"], let v = r[key], v.isFinite else { return nil }
                return String(format: "%.1f,%.1f", px(s), py(v))
            }
            let color = colors[i % colors.count]
            svg +=
                "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>"
            svg += String(
                format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"%@\">%@</text>", w - right + 6,
                top + 14 * Double(i + 1), color, escape(key))
        }
        return svg + "</svg>"
    }

    func metricsTable(_ m: [String: Double]) -> String {
        table(
            ["metric", "value"],
            m.keys.sorted().filter { $0 != "step" && $0 != "epoch" }.map { [escape($0), format(m[$0])] })
    }

    /// Up to `galleryLimit` images of `folder` (searched recursively), embedded.
    func gallery(_ title: String, folder: URL) -> String {
        guard let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else {
            return ""
        }
        let files = walker.compactMap { $0 as? URL }.filter {
            OverlayFormat.allCases.map(\.fileExtension).contains($0.pathExtension.lowercased())
        }
        .sorted { $0.path < $1.path }.prefix(galleryLimit)
        guard !files.isEmpty else { return "" }
        var out = "<h3>\(escape(title))</h3>\n<div class=\"gallery\">"
        for url in files {
            guard let data = try? Data(contentsOf: url) else { continue }
            let mime = url.pathExtension.lowercased() == "png" ? "image/png" : "image/jpeg"
            let name = url.path.replacingOccurrences(of: folder.path + "/", with: "")
            out +=
                "<figure><img alt=\"\(escape(name))\" src=\"data:\(mime);base64,\(data.base64EncodedString())\"><figcaption>\(escape(name))</figcaption></figure>"
        }
        return out + "</div>\n"
    }

    func table(_ header: [String], _ rows: [[String]]) -> String {
        "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
            + rows.map { "<tr>" + $0.map { "<td>\($0)</td>" }.joined() + "</tr>\n" }.joined() + "</table>\n"
    }

    func format(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "" }

    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

extension RunReport {
    /// A classifier's evaluation: scores, the confusion matrix drawn as shaded cells (row-normalised), and the
    /// accuracy under each FGSM epsilon.
    func classification(_ e: ClassificationEvaluation.Report) -> String {
        let m = e.metrics, names = e.classNames, n = names.count, counts = e.scores.matrix.counts
        var html =
            "<h2>Classification</h2>\n"
            + table(
                ["images", "top-1 accuracy", "top-5 accuracy", "mean F1", "ECE", "chance (most frequent class)"],
                [
                    [
                        String(e.images), format(m["top1_accuracy"]), format(m["top5_accuracy"]), format(m["mean_f1"]),
                        format(m["ece"]),
                        format(
                            Double((0..<n).map { t in (0..<n).reduce(0) { $0 + counts[t * n + $1] } }.max() ?? 0)
                                / Double(max(1, e.images)))
                    ]
                ])
            + table(
                ["class", "precision", "recall", "F1"],
                names.enumerated().map { c, name in
                    [escape(name), format(m["precision_\(c)"]), format(m["recall_\(c)"]), format(m["f1_\(c)"])]
                })
        html += "<h3>Confusion matrix (rows: truth, columns: prediction)</h3>\n<table><tr><th></th>"
        html += names.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
        for t in 0..<n {
            let row = (0..<n).map { counts[t * n + $0] }, total = max(1, row.reduce(0, +))
            html += "<tr><th>\(escape(names[t]))</th>"
            for v in row {
                let shade = Int((1 - Double(v) / Double(total)) * 255)
                html += "<td style=\"background: rgb(\(shade), \(shade), 255); text-align: right\">\(v)</td>"
            }
            html += "</tr>\n"
        }
        html += "</table>\n"
        if !e.attacked.isEmpty {
            html +=
                "<h3>Accuracy under FGSM (pixel units)</h3>\n"
                + table(
                    ["epsilon", "top-1 accuracy"], e.attacked.map { [String($0.epsilon), format($0.scores.accuracy)] })
        }
        return html
    }
}
