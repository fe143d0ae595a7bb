/// The release this build is, as `tessera --version` prints it and checkpoints (`tessera_version` metadata) and
/// `report.html` record it.
public enum TesseraVersion {
    public static let current = "0.8.0"
}
